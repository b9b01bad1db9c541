"""Strict JSON for frames and request bodies: I-JSON (RFC 7493), nested a bounded depth."""

from __future__ import annotations

import json
import math
import re
from typing import Any, Final

from humandesk.signaling.codes import MAX_JSON_DEPTH, ProtocolError

__all__ = ["MAX_SAFE_INTEGER", "holds_lone_surrogate", "load_json"]

#: Integers beyond what every JSON parser holds exactly (I-JSON, RFC 7493) are refused.
MAX_SAFE_INTEGER: Final = 2**53 - 1

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_PARENS = bytes.maketrans(b"[{]}", b"(())")
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[{]}"))
_SURROGATE = re.compile("[\ud800-\udfff]")


def load_json(text: str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parses JSON as the desk accepts it: I-JSON (RFC 7493), nested at most ``max_depth``.

    Python's parser alone accepts ``NaN`` and ``Infinity``, turns ``1e999999`` into infinity,
    raises ``RecursionError`` (not ``ValueError``) a thousand levels down and passes lone
    surrogates through (``"\\ud800"``), which no UTF-8 encoder, Redis's included, takes
    back. Raises :class:`ProtocolError`: ``too_deep`` for nesting, ``bad_json`` for anything
    else; lone surrogates are left to the caller (:func:`holds_lone_surrogate`), which can
    name the field that holds one.
    """
    if _too_deep(text, max_depth):
        raise ProtocolError("too_deep", f"the JSON nests deeper than {max_depth} levels")
    try:
        return json.loads(
            text,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_refuse_constant,
        )
    except RecursionError:  # not reachable after _too_deep; kept as a guard
        raise ProtocolError("too_deep", "the JSON nests too deeply") from None
    except ValueError:
        raise ProtocolError("bad_json", "the frame is not valid JSON") from None


def _too_deep(text: str, max_depth: int) -> bool:
    """Whether objects and arrays nest deeper than ``max_depth``, brackets in strings aside.

    Each step runs in C (a Python loop over the 16,000 brackets a 64 KiB frame holds cost
    5 ms): strings are cut out and the brackets kept as parentheses; more openers in a row
    than the limit are too deep at once; else each of ``max_depth`` passes deletes every
    innermost pair, and a pair left whole after that nested deeper, as did a text (cut short)
    with more openers left than the limit.
    """
    if text.count("[") + text.count("{") <= max_depth:
        return False  # the common case, decided without a scan
    structure = _STRING.sub("", text).encode("utf-8", "surrogatepass")
    parens = structure.translate(_PARENS, _NOT_BRACKETS)
    if b"(" * (max_depth + 1) in parens:
        return True  # a straight run of openers: the usual deep frame, found in one search
    for _ in range(max_depth):
        shorter = parens.replace(b"()", b"")
        if len(shorter) == len(parens):
            break
        parens = shorter
    return b"()" in parens or parens.count(b"(") > max_depth


def _number_error() -> ProtocolError:
    return ProtocolError(
        "bad_json", f"numbers must be finite, and whole numbers within ±{MAX_SAFE_INTEGER}"
    )


def _parse_int(literal: str) -> int:
    # Checked before int(): a 10,000-digit literal costs time and trips Python's digit limit.
    if len(literal) > 17:
        raise _number_error()
    value = int(literal)
    if abs(value) > MAX_SAFE_INTEGER:
        raise _number_error()
    return value


def _parse_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise _number_error()
    return value


def _refuse_constant(name: str) -> Any:
    raise ProtocolError("bad_json", f"{name} is not JSON")


def holds_lone_surrogate(value: Any) -> bool:
    """Whether any text of a parsed JSON value, names of fields included, holds a lone
    surrogate: text that strict UTF-8 (Redis's encoder, the sockets') cannot encode."""
    if isinstance(value, str):
        return _SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(holds_lone_surrogate(k) or holds_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(holds_lone_surrogate(item) for item in value)
    return False


# Parsing -----------------------------------------------------------------------------------
