"""Who may use the gateway: API keys (`keys`), what each key may ask for (`permissions`) and how
fast (`rate_limits`), and when serving beyond this machine is allowed (`exposure`)."""
