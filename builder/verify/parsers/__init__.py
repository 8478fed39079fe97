"""Parsers for the text that GPU, fabric and collective tools print (pure functions, unit-tested on samples)."""
