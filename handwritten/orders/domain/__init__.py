"""The Order aggregate and its rules: pure code, no I/O."""
