"""Auth domain: pure policy and value objects, free of I/O (no database, network,
clock or randomness: callers pass the time and the ids in)."""
