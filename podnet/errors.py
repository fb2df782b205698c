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


# --- CNI plugin, IPAM and agent (issue 3). Codes 1-11 are the specification's, 110+ are podnet's. ---


class CniSpecError(PodnetError):
    """An error the CNI specification defines; ``cni_code`` is the spec's well-known code."""


class IncompatibleCniVersion(CniSpecError):
    """The configuration asks for a CNI version podnet does not speak (or a verb that version lacks)."""

    cni_code = 1


class UnknownContainer(CniSpecError):
    """The container (or its attachment) is unknown to podnet."""

    cni_code = 3


class InvalidEnvironment(CniSpecError):
    """A required ``CNI_*`` environment variable is missing or malformed."""

    cni_code = 4


class DecodeFailure(CniSpecError):
    """The network configuration on stdin is not JSON."""

    cni_code = 6


class InvalidConfig(CniSpecError):
    """The network configuration is JSON but a field is missing or wrong."""

    cni_code = 7


class TryAgainLater(CniSpecError):
    """The agent is not reachable or busy; the runtime may retry."""

    cni_code = 11


class PluginNotAvailable(CniSpecError):
    """STATUS: the plugin cannot serve ADD now (agent down, no free address)."""

    cni_code = 50


class IpamError(PodnetError):
    """IPAM could not allocate or release."""

    cni_code = 110


class IpamExhausted(IpamError):
    """Every address of a pod CIDR is taken."""

    cni_code = 111


class StateCorrupt(PodnetError):
    """A state file under the agent's state dir cannot be read."""

    cni_code = 112


class InterfaceExists(PodnetError):
    """ADD was asked to create an interface that already exists in the pod's netns."""

    cni_code = 113


class DatapathError(PodnetError):
    """A netlink operation failed while wiring or unwiring a pod."""

    cni_code = 114


class CheckFailed(PodnetError):
    """CHECK found the pod's wiring incomplete; ``details`` lists what is missing."""

    cni_code = 115
