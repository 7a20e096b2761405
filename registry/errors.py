"""Typed registry errors carrying Confluent's error codes.

Every failure a client can act on is a `RegistryError`; its HTTP status is the
first three digits of the code, as Confluent does, so the confluent-kafka client
reports the same `error_code` and `http_status_code` it would against Confluent.
"""

from __future__ import annotations

from registry.limits import MAX_BODY_BYTES, MAX_MESSAGE_CHARS


class RegistryError(Exception):
    code: int = 50001
    default_message = "Error in the backend data store"

    def __init__(self, message: str | None = None) -> None:
        self.message = _bounded(message or self.default_message)
        super().__init__(self.message)

    @property
    def http_status(self) -> int:
        code = str(self.code)
        return int(code[:3]) if len(code) > 3 else self.code

    def to_body(self) -> dict[str, object]:
        return {"error_code": self.code, "message": self.message}


class Unauthorized(RegistryError):
    code = 40101
    default_message = "Unauthorized: this request needs valid registry credentials"


class SubjectNotFound(RegistryError):
    code = 40401

    def __init__(self, subject: str) -> None:
        super().__init__(f"Subject '{subject}' not found.")


class VersionNotFound(RegistryError):
    code = 40402

    def __init__(self, subject: str, version: int | str) -> None:
        super().__init__(f"Version {version} not found for subject '{subject}'.")


class SchemaNotFound(RegistryError):
    code = 40403
    default_message = "Schema not found"


class SubjectSoftDeleted(RegistryError):
    code = 40404

    def __init__(self, subject: str) -> None:
        super().__init__(
            f"Subject '{subject}' was soft deleted. Set permanent=true to delete permanently"
        )


class SubjectNotSoftDeleted(RegistryError):
    code = 40405

    def __init__(self, subject: str) -> None:
        super().__init__(
            f"Subject '{subject}' was not deleted first before being permanently deleted"
        )


class VersionSoftDeleted(RegistryError):
    code = 40406

    def __init__(self, subject: str, version: int) -> None:
        super().__init__(
            f"Subject '{subject}' Version {version} was soft deleted. "
            "Set permanent=true to delete permanently"
        )


class VersionNotSoftDeleted(RegistryError):
    code = 40407

    def __init__(self, subject: str, version: int) -> None:
        super().__init__(
            f"Subject '{subject}' Version {version} was not deleted first "
            "before being permanently deleted"
        )


class SubjectCompatibilityNotConfigured(RegistryError):
    code = 40408

    def __init__(self, subject: str) -> None:
        super().__init__(
            f"Subject '{subject}' does not have subject-level compatibility configured"
        )


class BodyTooLarge(RegistryError):
    # Confluent has no code of its own for this; like 409 and 422 here, the
    # bare HTTP status is the code.
    code = 413
    default_message = (
        f"Request body too large: at most {MAX_BODY_BYTES} bytes are accepted by this registry"
    )


class IncompatibleSchema(RegistryError):
    # Confluent uses the bare HTTP status as the code for this one.
    code = 409


class InvalidSchema(RegistryError):
    code = 42201
    default_message = "Invalid schema"


class InvalidVersion(RegistryError):
    code = 42202

    def __init__(self, version: str) -> None:
        super().__init__(
            f"The specified version '{version}' is not a valid version id. Allowed values are "
            'between [1, 2^31-1] and the string "latest"'
        )


class InvalidSubject(RegistryError):
    code = 42208

    def __init__(self, subject: str) -> None:
        super().__init__(
            f"The specified subject {subject!r} is not valid: it must be 1 to 255 characters "
            "with no control characters."
        )


class InvalidCompatibilityLevel(RegistryError):
    code = 42203
    default_message = (
        "Invalid compatibility level. Valid values are NONE, BACKWARD, BACKWARD_TRANSITIVE, "
        "FORWARD, FORWARD_TRANSITIVE, FULL and FULL_TRANSITIVE"
    )


class StoreError(RegistryError):
    code = 50001


def _bounded(message: str) -> str:
    # Messages quote the input; a hostile request must not get a huge error body.
    if len(message) <= MAX_MESSAGE_CHARS:
        return message
    cut = len(message) - MAX_MESSAGE_CHARS
    return f"{message[:MAX_MESSAGE_CHARS]}... ({cut} more characters cut)"
