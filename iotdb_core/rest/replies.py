"""An encoded REST answer (:class:`Reply`) and IoTDB's status bodies, shared by every route module."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from iotdb_core.rest.convert import SUCCESS_STATUS, dumps, status_body

__all__ = ["SUCCESS", "Reply", "status"]


@dataclass(frozen=True)
class Reply:
    """An encoded response: HTTP status, JSON bytes, whether it reports success, rows returned."""

    status: int
    body: bytes
    ok: bool = True
    rows: int = 0


def status(code: int, message: str, http_status: int = 200, **extra: Any) -> Reply:
    """IoTDB's ``{"code": ..., "message": ...}`` (plus ``extra`` fields) as a reply."""
    return Reply(http_status, dumps({**status_body(code, message), **extra}), ok=code == SUCCESS_STATUS)


SUCCESS = status(SUCCESS_STATUS, "SUCCESS_STATUS")
