"""Analytics domain: what events mean for the read model and for the reports (no I/O)."""
