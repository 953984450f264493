"""Upstox: the official SDK wrapped with chunking, a machine-wide rate limit and retries."""

PRODUCTION_HOST = "https://api.upstox.com"
