"""HTTP Basic authentication of REST requests against the data directory's users.

Every endpoint but ``GET /ping`` requires ``Authorization: Basic base64(user:password)``. As in IoTDB's REST
service, a request without a usable header is answered 401 with code 603 (``UNINITIALIZED_AUTH_ERROR``) and one
with wrong credentials 401 with code 600 (``WRONG_LOGIN_PASSWORD_ERROR``).

:meth:`UserStore.verify` runs scrypt on a first check (tens of milliseconds) and remembers a success, so the check
runs on a dedicated one-thread executor: the event loop never blocks, and a client hammering wrong passwords
queues behind itself instead of occupying the query threads.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from concurrent.futures import Executor

from iotdb_core.auth import UserStore

__all__ = [
    "UNINITIALIZED_AUTH_ERROR",
    "WRONG_LOGIN_PASSWORD_ERROR",
    "AuthFailure",
    "Authenticator",
    "parse_basic",
]

WRONG_LOGIN_PASSWORD_ERROR = 600
UNINITIALIZED_AUTH_ERROR = 603


class AuthFailure(Exception):
    """The request is not authenticated; ``code`` and ``message`` go into the 401 body."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def parse_basic(header: str | None) -> tuple[str, str]:
    """``(user, password)`` from an ``Authorization`` header value; AuthFailure (603) when it is not usable."""
    if not header:
        raise AuthFailure(UNINITIALIZED_AUTH_ERROR, "UNINITIALIZED_AUTH_ERROR: the Authorization header is missing")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic" or not token.strip():
        raise AuthFailure(
            UNINITIALIZED_AUTH_ERROR, "UNINITIALIZED_AUTH_ERROR: the Authorization header is not 'Basic <credentials>'"
        )
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise AuthFailure(
            UNINITIALIZED_AUTH_ERROR, "UNINITIALIZED_AUTH_ERROR: the Basic credentials are not base64 of user:password"
        ) from None
    user, colon, password = decoded.partition(":")
    if not colon or not user:
        raise AuthFailure(
            UNINITIALIZED_AUTH_ERROR, "UNINITIALIZED_AUTH_ERROR: the Basic credentials are not user:password"
        )
    return user, password


class Authenticator:
    """Checks Basic credentials against a :class:`UserStore` on an executor thread."""

    def __init__(self, users: UserStore, executor: Executor) -> None:
        self.users = users
        self.executor = executor

    async def authenticate(self, header: str | None) -> str:
        """The authenticated user name; raises :class:`AuthFailure` otherwise."""
        user, password = parse_basic(header)
        loop = asyncio.get_running_loop()
        if not await loop.run_in_executor(self.executor, self.users.verify, user, password):
            raise AuthFailure(WRONG_LOGIN_PASSWORD_ERROR, "WRONG_LOGIN_PASSWORD_ERROR")
        return user
