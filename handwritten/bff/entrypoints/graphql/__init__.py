"""Two strawberry schemas over one resolver layer (``service_layer.queries``).

``web`` is the rich shape of ``POST /graphql``; ``mobile`` the minimal shape of
``POST /graphql/mobile`` (see that module for what it leaves out and why). Both
have the same root fields, arguments, enums, inputs, scalars and error rules.
"""
