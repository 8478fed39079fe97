"""CLI command modules; each defines ``COMMANDS``."""
