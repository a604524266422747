"""The events stream into the read model: follow it live, rebuild from all of it, verify a
store against a rebuild."""
