"""What the gateway tells the monitoring a team already runs: Prometheus metrics and OpenTelemetry traces."""
