"""Payment domain: pure decisions, no I/O."""
