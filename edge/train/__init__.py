"""Training of the reference fusion models (needs the ``train`` extra: torch)."""
