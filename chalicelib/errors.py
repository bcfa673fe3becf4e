"""Errors the API turns into Vamp-style JSON bodies: {"message", "errors": [{"path", "reason"}]}."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FieldError:
    path: str
    reason: str

    def as_dict(self) -> dict:
        return {"path": self.path, "reason": self.reason}


@dataclass
class VampError(Exception):
    message: str
    errors: list[FieldError] = field(default_factory=list)
    status = 500

    def __str__(self) -> str:
        details = "; ".join(f"{e.path}: {e.reason}" for e in self.errors)
        return f"{self.message} ({details})" if details else self.message

    def body(self) -> dict:
        return {"message": self.message, "errors": [e.as_dict() for e in self.errors]}


class ValidationFailed(VampError):
    status = 400

    @classmethod
    def at(cls, path: str, reason: str, message: str = "Invalid input") -> "ValidationFailed":
        return cls(message, [FieldError(path, reason)])


class Forbidden(VampError):
    """A valid caller asked for more than its token's role or namespaces allow: 403."""

    status = 403

    @classmethod
    def at(cls, path: str, reason: str, message: str = "Forbidden") -> "Forbidden":
        return cls(message, [FieldError(path, reason)])


class NotFound(VampError):
    status = 404


@dataclass
class Conflict(VampError):
    """A conditional write lost: `current_version` is what is stored now (None: nothing is)."""

    current_version: int | None = None
    status = 409

    def body(self) -> dict:
        return {**super().body(), "current_version": self.current_version}


class PayloadTooLarge(VampError):
    status = 413


class UnsupportedMediaType(VampError):
    status = 415


class NotAcceptable(VampError):
    status = 406


@dataclass
class Unavailable(VampError):
    """A backend throttled or timed out: nothing is wrong with the request, try it again after
    `retry_after` seconds (the reply's Retry-After)."""

    retry_after: int = 1
    status = 503
