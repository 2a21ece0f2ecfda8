"""FastTicket's load benchmark: `python -m bench flash-sale` (see bench/README.md)."""
