"""Use cases over the ports the adapters implement."""
