"""The sync engine, state store, scheduler and command line."""
