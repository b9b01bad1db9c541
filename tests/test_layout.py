"""The source layout: queue/ must never shadow the standard library's queue."""

import subprocess
import sys

from conftest import REPO


def test_stdlib_queue_imports_from_repo_root() -> None:
    code = "import queue, asyncio, concurrent.futures; queue.SimpleQueue(); print(queue.__file__)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert "site-packages" not in out.stdout or "humandesk" not in out.stdout
    assert not (REPO / "queue" / "__init__.py").exists()
    assert out.stdout.strip().endswith("queue.py")


def test_package_maps_the_four_folders() -> None:
    import humandesk.queue.client
    import humandesk.server
    import humandesk.signaling
    import humandesk.web

    assert humandesk.queue.client.SCRIPTS_DIR.is_dir()
    for module in (humandesk.server, humandesk.signaling, humandesk.web):
        assert module.__file__ is not None
