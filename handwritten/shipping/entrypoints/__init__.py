"""How the outside world drives the service: Kafka, timer, REST, gRPC."""
