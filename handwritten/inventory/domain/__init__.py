"""The inventory's rules, free of I/O: money, products, availability, reservations."""
