"""The leaf of facerep: error classes, the cache location and safe file writes.

Every other part may import this package; it imports none of them.
"""
