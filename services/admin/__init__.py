"""The admin service: the API Keys administration page, served from templates. It reads through
the projection service's HTTP API and writes only by sending commands."""
