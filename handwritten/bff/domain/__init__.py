"""What the BFF knows: read models, the caller's access rule, client-visible errors."""
