"""`apikeys import`: existing keys from JSON lines, sent as ImportApiKeys commands."""
