"""The MediaError tree: every error carries its own policy.

An error knows its machine-readable code, the HTTP status a client sees, whether a job that hit it may be
retried, and the public message. The HTTP layer and the worker never match on error text.
"""

from __future__ import annotations

from typing import Any, ClassVar


class MediaError(Exception):
    code: ClassVar[str] = "internal_error"
    http_status: ClassVar[int] = 500
    retryable: ClassVar[bool] = False
    default_message: ClassVar[str] = "Something went wrong on our side."

    def __init__(self, message: str | None = None, *, detail: str | None = None, **extra: Any) -> None:
        self.message = message or self.default_message
        # `detail` is for logs only (stderr tails, paths); it never reaches a client.
        self.detail = detail
        self.extra = extra
        super().__init__(self.message)

    def public(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        body.update(self.extra)
        return body


# --- client errors (4xx): not retryable -------------------------------------------------------------


class Unauthorized(MediaError):
    code = "unauthorized"
    http_status = 401
    default_message = "A valid API key is required (Authorization: Bearer <key>)."


class NotFound(MediaError):
    code = "not_found"
    http_status = 404
    default_message = "No such media."


class Conflict(MediaError):
    code = "conflict"
    http_status = 409
    default_message = "The request conflicts with the media's current state."


class InvalidRequest(MediaError):
    code = "invalid_request"
    http_status = 422
    default_message = "The request is not valid."


class IdempotencyKeyReused(MediaError):
    code = "idempotency_key_reused"
    http_status = 422
    default_message = "This Idempotency-Key was used with a different request; use a new key for a new request."


class InvalidRecipe(MediaError):
    code = "invalid_recipe"
    http_status = 422
    default_message = "The recipe is not valid."


class UnknownPackItem(InvalidRecipe):
    code = "unknown_pack_item"
    default_message = "The recipe names a look, sticker or track that does not exist."


class UnsupportedMediaType(MediaError):
    code = "unsupported_media_type"
    http_status = 415
    default_message = "Accepted formats are JPEG, PNG, WebP, HEIC/HEIF and GIF."


class FileTooLarge(MediaError):
    code = "file_too_large"
    http_status = 413
    default_message = "The file is larger than the upload limit."


class TooManyRequests(MediaError):
    """Come back later: ``retry_after`` (seconds) goes to the client as the Retry-After header."""

    code = "rate_limited"
    http_status = 429
    default_message = "Too many requests for this API key; slow down."

    def __init__(self, message: str | None = None, *, retry_after: int, **extra: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, retry_after=retry_after, **extra)


class QuotaExceeded(TooManyRequests):
    code = "quota_exceeded"
    default_message = "Today's upload quota is used up; it resets at midnight UTC."


class ImageTooLarge(MediaError):
    code = "image_too_large"
    http_status = 422
    default_message = "The image has more pixels than the limit."


class VideoTooLong(MediaError):
    code = "video_too_long"
    http_status = 422
    default_message = "The video is longer than the limit; send a trim."


class CorruptMedia(MediaError):
    code = "corrupt_media"
    http_status = 422
    default_message = "The file could not be decoded."


class EmptyFile(MediaError):
    code = "empty_file"
    http_status = 422
    default_message = "The uploaded file is empty."


class BadRequest(MediaError):
    code = "bad_request"
    http_status = 400
    default_message = "The request is malformed."


# --- resumable (tus) and direct uploads -------------------------------------------------------------


class UploadOffsetMismatch(MediaError):
    code = "upload_offset_mismatch"
    http_status = 409
    default_message = "Upload-Offset does not match the bytes received so far; ask with HEAD and resume there."


class ChecksumMismatch(MediaError):
    code = "checksum_mismatch"
    http_status = 460  # tus checksum extension
    default_message = "The chunk's Upload-Checksum does not match its bytes; the chunk was discarded."


class UploadExpired(MediaError):
    code = "upload_expired"
    http_status = 410
    default_message = "The upload expired and its bytes were removed; start a new one."


class TusVersionUnsupported(MediaError):
    code = "tus_version_unsupported"
    http_status = 412
    default_message = "Only tus 1.0.0 is supported (header Tus-Resumable: 1.0.0)."


class UploadSizeMismatch(MediaError):
    code = "upload_size_mismatch"
    http_status = 422
    default_message = "The stored object's size differs from the size declared when the upload was created."


class NotSupported(MediaError):
    """A feature this deployment is not set up for (a 4xx: the API never answers 5xx for a client's request
    it understood; the fuzz tests hold it to that)."""

    code = "not_supported"
    http_status = 422
    default_message = "This deployment does not support this operation."


# --- server side ------------------------------------------------------------------------------------


class PackError(MediaError):
    """A designer pack is broken. Raised at load, naming the file and line."""

    code = "pack_invalid"
    http_status = 500
    default_message = "A designer pack failed to load."

    def __init__(self, path: str, line: int | None, problem: str) -> None:
        self.path = path
        self.line = line
        self.problem = problem
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {problem}")


class StorageUnavailable(MediaError):
    code = "storage_unavailable"
    http_status = 503
    retryable = True
    default_message = "Storage is unavailable; try again shortly."


class StorageObjectMissing(MediaError):
    code = "storage_object_missing"
    http_status = 404
    default_message = "The stored object is missing."


class BrokerUnavailable(MediaError):
    code = "broker_unavailable"
    http_status = 503
    retryable = True
    default_message = "The job queue is unavailable; try again shortly."


class Busy(MediaError):
    """Admission control: the queue is too deep to take more of this kind of work now."""

    code = "busy"
    http_status = 503
    retryable = True
    default_message = "Too many videos are waiting to be processed; try again shortly."

    def __init__(self, message: str | None = None, *, retry_after: int, **extra: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, retry_after=retry_after, **extra)


class DatabaseUnavailable(MediaError):
    code = "database_unavailable"
    http_status = 503
    retryable = True
    default_message = "The database is unavailable; try again shortly."


class ToolFailed(MediaError):
    code = "tool_failed"
    http_status = 500
    default_message = "A media tool failed."


class ToolTimeout(MediaError):
    code = "tool_timeout"
    http_status = 500
    retryable = True
    default_message = "Processing took too long."


class InternalError(MediaError):
    code = "internal_error"
    http_status = 500
    retryable = True
    default_message = "Something went wrong on our side."


class Cancelled(MediaError):
    """The job's record was deleted (or taken over by a newer attempt) while it ran: stop and clean up."""

    code = "cancelled"
    http_status = 409
    default_message = "Processing was cancelled."


class AttemptsExhausted(MediaError):
    code = "attempts_exhausted"
    http_status = 500
    default_message = "Processing failed after the maximum number of attempts."
