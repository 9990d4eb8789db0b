"""Retrieval: documents read, chunked, embedded and stored locally; hybrid dense + keyword search."""
