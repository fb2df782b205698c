"""The one exception tree of podnet.

Every error podnet raises on purpose derives from :class:`PodnetError`. Classes that can reach a
container runtime carry the CNI error code the specification assigns to them (``cni_code``);
codes 100 and above are podnet's own.
"""

from __future__ import annotations


class PodnetError(Exception):
    """Base of every deliberate podnet error."""

    cni_code: int = 999

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class ManifestError(PodnetError):
    """One or more manifests are invalid, the way the API server would reject them.

    ``problems`` holds one line per invalid field: ``file[doc N]: Kind ns/name: field.path: message``.
    """

    cni_code = 100

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class ReferenceError_(PodnetError):
    """An endpoint reference (``ns/name`` or ``ip:ADDR``) names nothing known."""

    cni_code = 101


class UsageError(PodnetError):
    """A command was called with arguments that do not fit together."""

    cni_code = 102
