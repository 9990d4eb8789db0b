"""Tasks: an LLM plans worker steps, local workers do them, the LLM writes the answer from their results."""
