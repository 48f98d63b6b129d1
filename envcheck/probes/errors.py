"""The one exception a probe raises on purpose: the section could not be collected, and why."""


class ProbeError(Exception):
    """Raised by a probe that cannot collect its section at all; the message is recorded as the reason.

    Fields that fail one by one are recorded as `Unavailable` instead; this is for the whole section.
    """
