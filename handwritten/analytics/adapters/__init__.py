"""ClickHouse (chdb or a server) and Redis behind the service layer's ports."""
