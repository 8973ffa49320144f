"""Web: the only layer that touches ``request``, ``session``, ``g`` and ``current_app``; it asks the domain."""
