"""The exceptions a probe raises on purpose: the section could not be collected, and why (and what to do)."""

from __future__ import annotations


class ProbeError(Exception):
    """Raised by a probe that cannot collect its section at all; the message is recorded as the reason.

    Fields that fail one by one are recorded as `Unavailable` instead; this is for the whole section.
    `fix`, when known, becomes the section's Unavailable fix.
    """

    def __init__(self, message: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.fix = fix


class ProbeTimeout(ProbeError):
    """The probe gave up on a source that did not answer in time (its own deadline, before the collector's)."""
