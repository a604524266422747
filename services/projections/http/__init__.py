"""The HTTP face of the read model: the Litestar app and the lean path for plain checks."""
