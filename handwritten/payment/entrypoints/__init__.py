"""What drives the payment service: Kafka commands and the reconciliation job."""
