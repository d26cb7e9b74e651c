"""Benchmarks and the load generator of the local stack.

``python -m bench [suite ...]`` (``make bench``) runs the suites side by side on this
machine and writes ``bench/results/<suite>.json`` plus ``summary.md``;
``python -m bench.load`` (``make load``) drives realistic traffic through the gateway.
Everything talks to the running local stack (``make up``) or to scratch databases,
schemas and topics that a suite creates and drops itself.
"""
