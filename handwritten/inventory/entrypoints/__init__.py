"""Ways in: the REST API, the gRPC service and the reservation expiry job."""
