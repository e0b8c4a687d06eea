"""Zero-downtime blue-green releases on one Docker host."""

__version__ = "0.1.0"
