"""Use cases of the payment service, written against the ports in ``ports``."""
