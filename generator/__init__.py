"""MicroCommerce code generator: specs in, typed code and deployment files out."""
