"""Handwritten domain logic and adapters behind the generated interfaces."""
