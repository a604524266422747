"""Message contracts shared by the keys and projection services (msgspec structs only)."""
