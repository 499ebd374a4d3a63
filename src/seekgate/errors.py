"""The one error tree of seekgate.

Every failure a caller can see is raised as one of these; each dialect renders it in its own
error format (status code, JSON body) in exactly one handler. Nothing returns errors as values.

    SeekgateError                      500  internal_error
    ├── InvalidRequest                 400  invalid_request_error
    │   ├── MalformedJSON              400  the body is not JSON
    │   └── Unsupported                400  a valid request this model/backend cannot serve
    ├── AuthenticationFailed           401
    ├── PermissionDenied               403
    │   └── OutputBlocked              403  a guard stopped the answer (a dangerous command)
    ├── NotFound                       404
    │   └── ModelNotFound              404  lists the known aliases
    ├── PayloadTooLarge                413
    ├── RateLimited                    429  carries Retry-After
    ├── Overloaded                     503  the bounded queue is full
    ├── ModelNotReady                  503  weights missing or still loading
    └── UpstreamError                  502  the backend answered with an error
        ├── UpstreamUnavailable        503  refused or unreachable
        └── UpstreamTimeout            504
"""

from __future__ import annotations

__all__ = [
    "AuthenticationFailed",
    "InvalidRequest",
    "MalformedJSON",
    "ModelNotFound",
    "ModelNotReady",
    "NotFound",
    "OutputBlocked",
    "Overloaded",
    "PayloadTooLarge",
    "PermissionDenied",
    "RateLimited",
    "SeekgateError",
    "Unsupported",
    "UpstreamError",
    "UpstreamTimeout",
    "UpstreamUnavailable",
]


class SeekgateError(Exception):
    """Base of every error a caller can see. `status` is the HTTP status a dialect renders."""

    status: int = 500
    kind: str = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers or {}


class InvalidRequest(SeekgateError):
    status = 400
    kind = "invalid_request_error"


class MalformedJSON(InvalidRequest):
    pass


class Unsupported(InvalidRequest):
    pass


class AuthenticationFailed(SeekgateError):
    status = 401
    kind = "authentication_error"


class PermissionDenied(SeekgateError):
    status = 403
    kind = "permission_error"


class OutputBlocked(PermissionDenied):
    """Raised inside a stream that already began: the dialect ends it with an error event."""


class NotFound(SeekgateError):
    status = 404
    kind = "not_found_error"


class ModelNotFound(NotFound):
    def __init__(self, model: str, known: list[str]) -> None:
        super().__init__(
            f"model {model!r} does not exist; known models: {', '.join(sorted(known))}",
            param="model",
            code="model_not_found",
        )


class PayloadTooLarge(SeekgateError):
    status = 413
    kind = "request_too_large"


class RateLimited(SeekgateError):
    status = 429
    kind = "rate_limit_error"


class Overloaded(SeekgateError):
    status = 503
    kind = "overloaded_error"


class ModelNotReady(SeekgateError):
    status = 503
    kind = "model_not_ready"


class UpstreamError(SeekgateError):
    status = 502
    kind = "upstream_error"


class UpstreamUnavailable(UpstreamError):
    status = 503
    kind = "upstream_unavailable"


class UpstreamTimeout(UpstreamError):
    status = 504
    kind = "upstream_timeout"
