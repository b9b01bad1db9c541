"""Typed, checked access to the fields of one client message (:func:`messages.parse`):
each refusal is a ``bad_message`` or ``too_large`` :class:`ProtocolError` naming the field."""

from __future__ import annotations

from typing import Any, Final

from humandesk.signaling.codes import ProtocolError

__all__ = [
    "MAX_CANDIDATE_CHARS",
    "MAX_PRECALL_RTT_MS",
    "MAX_SDP_CHARS",
    "PRECALL_PATHS",
    "PRECALL_STATUSES",
    "Fields",
    "precall_result",
    "signal_parts",
]

MAX_SDP_CHARS: Final = 24_000
MAX_CANDIDATE_CHARS: Final = 1_024
#: The pre-call test's verdicts and paths (docs/protocol.md, "The pre-call test").
PRECALL_STATUSES: Final = ("ok", "poor", "failed", "busy")
PRECALL_PATHS: Final = ("direct", "relay")
MAX_PRECALL_RTT_MS: Final = 60_000


class Fields:
    """Typed access to the fields of one message, raising ``bad_message`` on a mismatch."""

    def __init__(self, data: dict[str, Any], kind: str) -> None:
        self.data = data
        self.kind = kind

    def _bad(self, message: str) -> ProtocolError:
        return ProtocolError("bad_message", message, self.kind)

    def text(
        self,
        name: str,
        *,
        default: str | None = None,
        max_chars: int,
        min_chars: int = 0,
        strip: bool = False,
    ) -> str:
        value = self.data.get(name, default)
        if value is None:
            raise self._bad(f"'{name}' is required")
        if not isinstance(value, str):
            raise self._bad(f"'{name}' must be a string")
        if strip:
            value = " ".join(value.split())
        if len(value) > max_chars:
            raise self._bad(f"'{name}' is longer than {max_chars} characters")
        if len(value) < min_chars:
            raise self._bad(f"'{name}' must not be empty")
        return value

    def ident(self, name: str) -> str:
        value = self.data.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value or len(value) > 64:
            raise self._bad(f"'{name}' must be an id string")
        return value

    def flag(self, name: str, *, default: bool | None = None) -> bool:
        value = self.data.get(name, default)
        if not isinstance(value, bool):
            raise self._bad(f"'{name}' must be true or false")
        return value


def signal_parts(fields: Fields) -> tuple[dict[str, str] | None, dict[str, Any] | None, bool]:
    """A ``signal``'s description, or its ICE candidate (``None``: end of candidates),
    checked and copied field by field: (description, candidate, has_candidate)."""
    has_description = "description" in fields.data
    has_candidate = "candidate" in fields.data
    if has_description == has_candidate:
        raise ProtocolError(
            "bad_message", "a signal carries exactly one of 'description' or 'candidate'", "signal"
        )
    if has_description:
        desc = fields.data["description"]
        if not isinstance(desc, dict):
            raise ProtocolError("bad_message", "'description' must be an object", "signal")
        sdp_type, sdp = desc.get("type"), desc.get("sdp")
        if sdp_type not in ("offer", "answer") or not isinstance(sdp, str):
            raise ProtocolError(
                "bad_message", "'description' needs type offer/answer and an sdp string", "signal"
            )
        if len(sdp) > MAX_SDP_CHARS:
            raise ProtocolError(
                "too_large", f"the SDP is longer than {MAX_SDP_CHARS} characters", "signal"
            )
        return {"type": sdp_type, "sdp": sdp}, None, False
    cand = fields.data["candidate"]
    if cand is None:
        return None, None, True
    if not isinstance(cand, dict):
        raise ProtocolError("bad_message", "'candidate' must be an object or null", "signal")
    text = cand.get("candidate")
    if not isinstance(text, str):
        raise ProtocolError("bad_message", "'candidate.candidate' must be a string", "signal")
    if len(text) > MAX_CANDIDATE_CHARS:
        raise ProtocolError("too_large", "the ICE candidate is too long", "signal")
    clean: dict[str, Any] = {"candidate": text}
    mid = cand.get("sdpMid")
    if mid is not None:
        if not isinstance(mid, str) or len(mid) > 64:
            raise ProtocolError("bad_message", "'candidate.sdpMid' must be short text", "signal")
        clean["sdpMid"] = mid
    index = cand.get("sdpMLineIndex")
    if index is not None:
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < 64:
            raise ProtocolError("bad_message", "'candidate.sdpMLineIndex' is invalid", "signal")
        clean["sdpMLineIndex"] = index
    ufrag = cand.get("usernameFragment")
    if ufrag is not None:
        if not isinstance(ufrag, str) or len(ufrag) > 256:
            raise ProtocolError("bad_message", "'candidate.usernameFragment' is invalid", "signal")
        clean["usernameFragment"] = ufrag
    return None, clean, True


def precall_result(fields: Fields) -> dict[str, Any] | None:
    """The pre-call result of a ``join``: exactly ``status`` and, each number or null,
    ``rtt_ms`` (0-60,000), ``loss_pct`` (0-100) and ``path`` (direct or relay)."""
    raw = fields.data.get("precall")
    if raw is None:
        return None

    def bad(message: str) -> ProtocolError:
        return ProtocolError("bad_message", f"'precall': {message}", "join")

    if not isinstance(raw, dict):
        raise bad("must be an object or null")
    unknown = sorted(set(raw) - {"status", "rtt_ms", "loss_pct", "path"})
    if unknown:
        raise bad(f"no field {unknown[0][:40]!r}")
    status = raw.get("status")
    if status not in PRECALL_STATUSES:
        raise bad("'status' must be ok, poor, failed or busy")

    def number(name: str, top: float) -> float | None:
        value = raw.get(name)
        if value is None:
            return None
        if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= top:
            raise bad(f"'{name}' must be null or a number 0-{top:g}")
        return float(value)

    rtt, loss = number("rtt_ms", MAX_PRECALL_RTT_MS), number("loss_pct", 100)
    path = raw.get("path")
    if path is not None and path not in PRECALL_PATHS:
        raise bad("'path' must be null, direct or relay")
    return {
        "status": status,
        "rtt_ms": None if rtt is None else round(rtt),
        "loss_pct": None if loss is None else round(loss, 1),
        "path": path,
    }
