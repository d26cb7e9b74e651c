"""What a GraphQL request can ask for, independent of the schema shape serving it."""
