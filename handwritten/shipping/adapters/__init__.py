"""PostgreSQL and event adapters of the shipping ports."""
