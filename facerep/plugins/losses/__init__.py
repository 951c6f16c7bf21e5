"""Built-in losse plugins."""
