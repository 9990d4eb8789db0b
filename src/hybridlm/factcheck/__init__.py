"""Fact-checking an answer against its sources: claims, evidence, a small trained detector."""
