"""SLM skills: small, local, separately measured models that support routing and answering."""
