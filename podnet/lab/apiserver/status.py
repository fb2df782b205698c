"""Kubernetes ``Status`` objects: every error of the lab API server is one, with the real reason and code."""

from __future__ import annotations

from typing import Any

from podnet.lab.apiserver.resources import Resource

# Field error messages of podnet.k8s.parse start with the same words as the API server's, which name the cause.
_CAUSE_REASONS: tuple[tuple[str, str], ...] = (
    ("Required value", "FieldValueRequired"),
    ("Unsupported value", "FieldValueNotSupported"),
    ("Duplicate value", "FieldValueDuplicate"),
    ("Forbidden", "FieldValueForbidden"),
    ("Too many", "FieldValueTooMany"),
    ("Too long", "FieldValueTooLong"),
)


class ApiError(Exception):
    """An API request failed; :meth:`status` is the body the client gets."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        return failure(self.code, self.reason, self.message, self.details)


def failure(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        out["details"] = details
    return out


def success(resource: Resource, name: str, uid: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "kind": resource.plural, "uid": uid}
    if resource.group:
        details["group"] = resource.group
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}


def _details(resource: Resource, name: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "kind": resource.plural}
    if resource.group:
        details["group"] = resource.group
    return details


def not_found(resource: Resource, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{resource.qualified} "{name}" not found', _details(resource, name))


def already_exists(resource: Resource, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f'{resource.qualified} "{name}" already exists', _details(resource, name))


def conflict(resource: Resource, name: str, why: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {resource.qualified} "{name}": {why}',
        _details(resource, name),
    )


def stale(resource: Resource, name: str) -> ApiError:
    return conflict(
        resource, name, "the object has been modified; please apply your changes to the latest version and try again"
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def expired(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def cause(field_and_message: str) -> dict[str, str]:
    """One ``details.causes`` entry from a ``path: message`` problem."""
    path, sep, message = field_and_message.partition(": ")
    if not sep:
        path, message = "", field_and_message
    reason = next((r for prefix, r in _CAUSE_REASONS if message.startswith(prefix)), "FieldValueInvalid")
    return {"reason": reason, "message": message, "field": path}


def invalid(resource: Resource, name: str, problems: list[str]) -> ApiError:
    """422 Invalid, one cause per ``path: message`` problem, the message listing them as the API server does."""
    causes = [cause(p) for p in problems]
    kind = f"{resource.kind}.{resource.group}" if resource.group else resource.kind
    items = [f"{c['field']}: {c['message']}" if c["field"] else c["message"] for c in causes]
    listed = items[0] if len(items) == 1 else f"[{', '.join(items)}]"
    details = {"name": name, "kind": resource.kind, "causes": causes}
    if resource.group:
        details["group"] = resource.group
    return ApiError(422, "Invalid", f'{kind} "{name}" is invalid: {listed}', details)
