"""envcheck: will this machine train the model, and if not, what exactly to change."""

__version__ = "0.1.0"
