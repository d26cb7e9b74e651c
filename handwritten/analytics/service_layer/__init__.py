"""Use cases of the analytics service: ingesting events, answering reports."""
