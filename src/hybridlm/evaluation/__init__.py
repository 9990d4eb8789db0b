"""Metrics, cross-validation and reports for routers and skills."""
