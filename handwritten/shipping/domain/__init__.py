"""Shipments and their rules, free of I/O."""
