"""edge: a streaming, real-time audio-visual perception pipeline for embedded devices."""

__version__ = "0.1.0"
