"""pytest-testinfra suites run by ``builder.verify.run_suite`` (not collected by the project's own tests)."""
