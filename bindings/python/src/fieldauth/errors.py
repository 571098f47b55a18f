"""Exceptions: one type per family of ``fieldauth_status`` codes.

Every failing library call raises a subclass of :class:`FieldauthError` whose
``status`` is the C ABI's code and whose message is the library's own sentence
(``fieldauth_status_message``), prefixed with the operation that failed. The
families follow the header's grouping of codes by hundreds:

========================  ===============================================
status                    exception
========================  ===============================================
1, 2, 4, 5, 6             :class:`InvalidArgument` (also a ``ValueError``)
3                         :class:`NotInitialized` (closed or cleared session)
7                         :class:`WouldBlock`
100                       :class:`BufferTooSmall` (``needed`` holds the size)
101                       :class:`CapacityExceeded`
200..299                  :class:`InputError` (also a ``ValueError``)
300..399                  :class:`HttpError` (a :class:`ProtocolError`)
400..499                  :class:`JsonError` (a :class:`ProtocolError`)
500..599                  :class:`ResponseError` (a :class:`ProtocolError`)
600                       :class:`WrongState`
700..799                  :class:`SnapshotError` (also a ``ValueError``)
800..899                  :class:`TransportError`
anything else             :class:`UnknownError`
========================  ===============================================

:class:`SessionFailed` is not a status: :meth:`fieldauth.Session.raise_if_failed`
raises it when the session is in a permanent failure, with the provider's
``error_description``.
"""

from __future__ import annotations

from typing import Optional, Type, Union

from .enums import Failure, Status

__all__ = [
    "FieldauthError",
    "CallError",
    "InvalidArgument",
    "NotInitialized",
    "WouldBlock",
    "SizeError",
    "BufferTooSmall",
    "CapacityExceeded",
    "InputError",
    "ProtocolError",
    "HttpError",
    "JsonError",
    "ResponseError",
    "WrongState",
    "SnapshotError",
    "TransportError",
    "UnknownError",
    "SessionFailed",
    "error_for",
]


def _status(code: int) -> Union[Status, int]:
    try:
        return Status(code)
    except ValueError:
        return code


class FieldauthError(Exception):
    """Base of every fieldauth exception.

    Attributes:
        status: the ``fieldauth_status`` code (a :class:`~fieldauth.Status`, or
            a plain ``int`` for a code this binding does not know), or ``None``
            for :class:`SessionFailed`.
        message: the library's sentence for the status.
    """

    status: Optional[Union[Status, int]]
    message: str

    def __init__(
        self,
        status: Optional[int],
        message: str,
        context: str = "",
    ) -> None:
        self.status = None if status is None else _status(status)
        self.message = message
        self.context = context
        super().__init__(self._text())

    def _text(self) -> str:
        code = ""
        if self.status is not None:
            name = self.status.name if isinstance(self.status, Status) else "?"
            code = f" (status {int(self.status)} {name})"
        where = f"{self.context}: " if self.context else ""
        return f"{where}{self.message}{code}"


class CallError(FieldauthError):
    """Family 1..99: the call itself was wrong."""


class InvalidArgument(CallError, ValueError):
    """A bad argument: NULL, misaligned, not UTF-8, unknown enumeration value, out of range."""


class NotInitialized(CallError):
    """The object is not initialized: the session was closed, cleared or never set up."""


class WouldBlock(CallError):
    """The transport would block: call :meth:`fieldauth.Session.exchange` again when it is ready."""


class SizeError(FieldauthError):
    """Family 100: a buffer or capacity is too small."""


class BufferTooSmall(SizeError):
    """An output buffer is too small; ``needed`` is the size the library asked for.

    The binding sizes its buffers from the library and retries, so seeing
    this means the needed size changed between two calls.
    """

    def __init__(self, status: int, message: str, context: str = "", needed: int = 0) -> None:
        self.needed = needed
        super().__init__(status, message, context)


class CapacityExceeded(SizeError):
    """A capacity of the session is too small for the configuration or the response.

    ``needed`` is the size a token slot needed (the session's
    ``token_capacity``) when a token response did not fit, or 0 when the
    library did not say; the message says what to change.
    """

    def __init__(self, status: int, message: str, context: str = "", needed: int = 0) -> None:
        self.needed = needed
        super().__init__(status, message, context)

    def _text(self) -> str:
        text = super()._text()
        if self.needed:
            text += (
                f": a token slot of {self.needed} bytes was needed; create the Session "
                f"with token_capacity={self.needed} or more"
            )
        return text


class InputError(FieldauthError, ValueError):
    """Family 200: an input value is unusable (empty, control characters, bad URL, too long...)."""


class ProtocolError(FieldauthError):
    """Families 300..500: the server's response is malformed or unusable."""


class HttpError(ProtocolError):
    """Family 300: the HTTP response is malformed."""


class JsonError(ProtocolError):
    """Family 400: the response body is not valid JSON."""


class ResponseError(ProtocolError):
    """Family 500: the response is well-formed but unusable (missing member, bad status...)."""


class AuthorizationDenied(ResponseError):
    """Status 509: the authorization server redirected back with ``error=`` instead of a code.

    Raised by :meth:`~fieldauth.Session.on_authorization_callback`.

    Attributes:
        failure: the error as a :class:`~fieldauth.Failure` (``ACCESS_DENIED``,
            ``INVALID_SCOPE``, ``UNAUTHORIZED_CLIENT``, or ``REJECTED`` for any
            other code).
        error: the ``error`` parameter as sent (e.g. ``"access_denied"``).
        description: the ``error_description`` parameter, or ``""``.
    """

    def __init__(
        self, status: int, message: str, context: str, failure: Failure, error: str, description: str
    ) -> None:
        super().__init__(status, message, context)
        self.failure = failure
        self.error = error
        self.description = description


class WrongState(FieldauthError):
    """Family 600: the call is not valid in the session's (or parser's) current state."""


class SnapshotError(FieldauthError, ValueError):
    """Family 700: a snapshot image cannot be restored."""


class TransportError(FieldauthError):
    """Family 800: the transport failed; the session has scheduled a retry."""


class UnknownError(FieldauthError):
    """A status this binding does not know (family 900 or a newer library)."""


class SessionFailed(FieldauthError):
    """The session is in a permanent failure (bad credentials, revoked tokens, retries exhausted).

    Attributes:
        failure: why (a :class:`~fieldauth.Failure`).
        description: the provider's ``error_description`` for the last token
            error, or ``""`` if it sent none.
    """

    def __init__(self, failure: Failure, description: str = "") -> None:
        self.failure = failure
        self.description = description
        text = f"the session failed permanently: {failure.name.lower().replace('_', ' ')}"
        if description:
            text += f" (server: {description})"
        text += "; fix the cause, then call restart()"
        super().__init__(None, text)


_FAMILY: dict[int, Type[FieldauthError]] = {
    200: InputError,
    300: HttpError,
    400: JsonError,
    500: ResponseError,
    600: WrongState,
    700: SnapshotError,
    800: TransportError,
}


def error_for(status: int, message: str, context: str = "", needed: int = 0) -> FieldauthError:
    """The exception for a non-OK ``status`` with the library's ``message``."""
    if status == Status.NOT_INITIALIZED:
        return NotInitialized(status, message, context)
    if status == Status.WOULD_BLOCK:
        return WouldBlock(status, message, context)
    if 1 <= status < 100:
        return InvalidArgument(status, message, context)
    if status == Status.BUFFER_TOO_SMALL:
        return BufferTooSmall(status, message, context, needed)
    if 100 <= status < 200:
        return CapacityExceeded(status, message, context, needed)
    cls = _FAMILY.get(status // 100 * 100, UnknownError)
    return cls(status, message, context)
