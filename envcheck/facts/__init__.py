"""The facts of one machine: frozen dataclasses, one module per snapshot section.

Facts never judge. Units live in field names and are converted once, in the probe. A fact that
could not be collected is an `Unavailable` with its reason; `None` only means "does not apply".
"""

from envcheck.facts.common import Unavailable

__all__ = ["Unavailable"]
