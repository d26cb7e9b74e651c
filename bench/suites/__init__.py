"""The benchmark suites, each a module with ``run(ctx) -> SuiteResult``."""
