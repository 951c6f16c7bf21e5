"""Built-in benchmark plugins."""
