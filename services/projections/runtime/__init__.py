"""What the running service shares between its parts: the live read model (one writer, the
feed; many readers, the HTTP queries), how fresh it is, and the settings read at start-up."""
