"""Built-in renderer plugins."""
