"""The HTTP endpoints and the GraphQL schemas (web and mobile shapes)."""
