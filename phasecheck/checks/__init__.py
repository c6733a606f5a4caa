"""Built-in graduation checks. Each module holds one check, registered under `phasecheck.checks`."""
