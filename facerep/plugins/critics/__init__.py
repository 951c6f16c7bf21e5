"""Built-in critic plugins."""
