"""The REST and gRPC faces of the orders service, both over ``OrdersService``."""
