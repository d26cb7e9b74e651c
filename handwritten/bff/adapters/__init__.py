"""gRPC clients, circuit breakers with shared state, and the summary cache."""
