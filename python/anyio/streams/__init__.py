"""Stream implementations: memory, buffered, text, stapled, file and TLS."""
