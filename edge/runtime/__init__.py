"""Inference backends behind one :class:`~edge.runtime.base.Engine` interface."""
