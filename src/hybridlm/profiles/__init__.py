"""Profiles: each reads a request (and the local skills' signals) and returns a plan."""
