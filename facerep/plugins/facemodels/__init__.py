"""Built-in facemodel plugins."""
