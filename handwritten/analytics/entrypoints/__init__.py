"""How the outside world drives the service: Kafka, REST, gRPC, the rebuild command."""
