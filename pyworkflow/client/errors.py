"""Errors coming back over the wire, turned back into pyworkflow's exceptions.

The API answers ``{"error": {"type": "<exception class name>", "message": "..."}}``; a remote
caller should be able to write the same ``except HookExpiredError:`` as an embedded one. Known
type names become that class, carrying the server's message unchanged; anything else (an API
Gateway 403, a 413, a validation error of the request itself) becomes ``ApiError``, which keeps
the HTTP status and the type name.
"""

from __future__ import annotations

from typing import Any

from pyworkflow import exceptions as exc
from pyworkflow.client.models import ApiErrorBody


class ApiError(exc.WorkflowError):
    """An error answer the client has no more specific exception for."""

    def __init__(
        self, message: str, *, status: int | None = None, error_type: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type


class TransportError(ApiError):
    """The request never got a pyworkflow answer (connection refused, not JSON, Lambda crash)."""


UnknownWorkflowError = exc.UnknownWorkflowError  # where clients imported it from before


#: Exception classes a server may name in ``error.type``; only these are rebuilt. Every error
#: of pyworkflow's tree: the server raises the same classes (``pyworkflow.service``), so a new
#: one needs no second list here.
KNOWN_ERRORS: dict[str, type[exc.WorkflowError]] = {
    name: cls
    for name, cls in vars(exc).items()
    if isinstance(cls, type) and issubclass(cls, exc.WorkflowError)
}


def rebuild(cls: type[exc.WorkflowError], message: str) -> exc.WorkflowError:
    """An instance of ``cls`` whose message is exactly the server's: several classes build
    their message from arguments in ``__init__``, so that is bypassed."""
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    return error


def error_from_body(
    body: Any, status: int | None = None, default: str = "request failed"
) -> exc.WorkflowError:
    """The exception an error answer stands for (``body`` is the decoded JSON, or anything)."""
    detail = body.get("error") if isinstance(body, dict) else None
    if isinstance(detail, dict):
        try:
            parsed = ApiErrorBody.model_validate(detail)
        except ValueError:
            parsed = None
        if parsed is not None:
            cls = KNOWN_ERRORS.get(parsed.type)
            if cls is not None:
                # As raised in process: the class says what happened, without the HTTP status.
                return rebuild(cls, parsed.message)
            return ApiError(
                f"{parsed.type}: {parsed.message}", status=status, error_type=parsed.type
            )
    # Not ours: e.g. API Gateway's own {"message": "Forbidden"} for a bad signature.
    text = body.get("message") if isinstance(body, dict) else None
    prefix = f"HTTP {status}: " if status else ""
    return ApiError(f"{prefix}{text or body or default}", status=status)
