"""Built-in decoder plugins."""
