"""Clew: follow the thread through an integration landscape."""

__version__ = "0.1.0"
