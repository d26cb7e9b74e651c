"""Use cases of the orders service, over ports that the adapters implement."""
