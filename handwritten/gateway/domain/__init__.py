"""Pure gateway logic (no I/O): kong.yml parsing, routing, JWT and rate-limit rules."""
