"""docs/protocol.md against the schema: every message type in its tables is one the code
knows, and every type the code (Python or Lua) sends is in its tables."""

from __future__ import annotations

import re

from humandesk.signaling.messages import AGENT_TYPES, DESK_TYPES, VISITOR_TYPES

from conftest import REPO

DOC = (REPO / "docs" / "protocol.md").read_text()
#: Published between the desk's processes on queue and desk channels, never to a socket.
INTERNAL = {"queue", "queues_changed"}


def table_types(heading: str) -> set[str]:
    """The message types in the first column of the table under ``## heading``."""
    section = DOC.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    types: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            first = line.split("|")[1]
            types |= set(re.findall(r"`([a-z_]+)`", first))
    return types


def test_the_tables_list_exactly_the_message_types_of_the_schema() -> None:
    assert table_types("Messages from a visitor") == VISITOR_TYPES
    assert table_types("Messages from an agent") == AGENT_TYPES
    assert table_types("Messages from the desk") == DESK_TYPES


def sent_types() -> dict[str, set[str]]:
    """Every message type written as a literal where the desk builds messages."""
    found: dict[str, set[str]] = {}
    for path in [*(REPO / "signaling").glob("*.py"), *(REPO / "server").glob("*.py")]:
        if path.name == "peers.py":  # the test clients: they send as visitors and agents
            continue
        if path.name == "precall.py":  # HTTP answers of the pre-call test: checked below
            continue
        for kind in re.findall(r'"type": "([a-z_]+)"', path.read_text()):
            found.setdefault(kind, set()).add(path.name)
    for path in (REPO / "queue" / "scripts").glob("*.lua"):
        for kind in re.findall(r"type = '([a-z_]+)'", path.read_text()):
            found.setdefault(kind, set()).add(path.name)
    return found


def test_every_type_the_desk_sends_is_documented() -> None:
    undocumented = {
        kind: sorted(where)
        for kind, where in sent_types().items()
        if not kind.startswith("_") and kind not in DESK_TYPES | INTERNAL
    }
    assert undocumented == {}


def test_the_close_codes_of_the_code_are_documented() -> None:
    from humandesk.signaling.codes import CloseCode

    section = DOC.split("## Close codes\n", 1)[1].split("\n## ", 1)[0]
    documented = {int(code) for code in re.findall(r"^\| (\d{4}) \|", section, re.M)}
    codes = {int(code) for code in CloseCode}
    assert codes <= documented, codes - documented


def test_the_precall_result_is_documented_as_the_schema_reads_it() -> None:
    from humandesk.signaling.fields import MAX_PRECALL_RTT_MS, PRECALL_PATHS, PRECALL_STATUSES

    section = DOC.split("## The pre-call test\n", 1)[1].split("\n## ", 1)[0]
    rows = {
        line.split("|")[1].strip().strip("`"): line
        for line in section.splitlines()
        if line.startswith("| `")
    }
    assert {"status", "rtt_ms", "loss_pct", "path"} <= set(rows)
    for status in PRECALL_STATUSES:
        assert f"`{status}`" in rows["status"], status
    for path in PRECALL_PATHS:
        assert f"`{path}`" in rows["path"], path
    assert f"0\u2013{MAX_PRECALL_RTT_MS:,}" in rows["rtt_ms"]
    for error in ("precall_busy", "precall_unavailable", "rate_limited", "origin_not_allowed"):
        assert f"`{error}`" in section, error
    assert "`precall`" in DOC.split("## Messages from a visitor\n", 1)[1].split("\n## ", 1)[0]
