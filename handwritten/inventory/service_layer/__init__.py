"""Use cases of the inventory, written against ports (``ports``) only."""
