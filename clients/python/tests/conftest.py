"""Fixtures: a real `mnemo serve` on a free port with two tenants, clients for it, and
helpers that wait (bounded) for the server's processors."""

from __future__ import annotations

import collections
import hashlib
import os
import queue
import re
import secrets
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Deque, Iterator, List, Optional, TypeVar

import pytest

from mnemo_client import MnemoClient

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[3]
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
SERVING = re.compile(r"mnemo serving on (http://\S+)")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def find_binary() -> Path:
    """The mnemo binary: $MNEMO_BIN, $CARGO_TARGET_DIR/release, <repo>/target/release,
    ~/.cache/mnemo-target/release. Fails (never skips) when there is none."""
    explicit = os.environ.get("MNEMO_BIN")
    if explicit:
        path = Path(explicit)
        if not (path.is_file() and os.access(path, os.X_OK)):
            pytest.fail(f"MNEMO_BIN={explicit} is not an executable file", pytrace=False)
        return path
    candidates: List[Path] = []
    target = os.environ.get("CARGO_TARGET_DIR")
    if target:
        candidates.append(Path(target) / "release" / "mnemo")
    candidates.append(REPO / "target" / "release" / "mnemo")
    candidates.append(Path.home() / ".cache" / "mnemo-target" / "release" / "mnemo")
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    looked = "\n  ".join(str(p) for p in candidates)
    pytest.fail(
        "no mnemo binary to test against. Set MNEMO_BIN, or build one "
        "(cargo build --release --bin mnemo). Looked at:\n  " + looked,
        pytrace=False,
    )
    raise AssertionError("unreachable")


@dataclass
class Server:
    """A running `mnemo serve`."""

    url: str
    key1: str
    key2: str
    process: "subprocess.Popen[str]"
    log: Deque[str]

    def stderr_tail(self) -> str:
        """The last lines the server wrote."""
        return "".join(self.log)


def _drain(stream: "object", lines: "queue.Queue[Optional[str]]", log: Deque[str]) -> None:
    """Reads the server's stderr to its end, so the pipe never fills."""
    for line in stream:  # type: ignore[attr-defined]
        log.append(line)
        lines.put(line)
    lines.put(None)


def start_server(tmp: Path) -> Server:
    """Starts `mnemo serve` with a fresh data directory and two tenants' keys, and waits
    for its 'mnemo serving on' line."""
    binary = find_binary()
    key1, key2 = secrets.token_hex(32), secrets.token_hex(32)
    sha = lambda k: hashlib.sha256(k.encode()).hexdigest()  # noqa: E731
    config = tmp / "mnemo.toml"
    config.write_text(
        f"""
[storage]
data_dir = "{tmp / "data"}"

[server]
listen = "127.0.0.1:0"

[auth]
keys = [{{ tenant = "t1", sha256 = "{sha(key1)}" }}, {{ tenant = "t2", sha256 = "{sha(key2)}" }}]
""",
        encoding="utf-8",
    )
    env = dict(os.environ)
    env["RUST_LOG"] = "info"
    env.pop("MNEMO__SERVER__LISTEN", None)
    process = subprocess.Popen(
        [str(binary), "--config", str(config), "serve"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="replace",
        env=env,
    )
    log: Deque[str] = collections.deque(maxlen=400)
    lines: "queue.Queue[Optional[str]]" = queue.Queue()
    threading.Thread(
        target=_drain, args=(process.stderr, lines, log), name="mnemo-stderr", daemon=True
    ).start()
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        left = deadline - time.monotonic()
        try:
            line = lines.get(timeout=max(left, 0.01)) if left > 0 else None
        except queue.Empty:
            line = None
        if line is None:
            # Exited, or the line never came in time.
            if process.poll() is None:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT)
                why = f"did not say 'mnemo serving on' within {START_TIMEOUT} s (killed)"
            else:
                why = f"exited with code {process.returncode} before 'mnemo serving on'"
            pytest.fail(
                f"{binary} --config {config} serve {why}; its stderr:\n{''.join(log)}",
                pytrace=False,
            )
        match = SERVING.search(ANSI.sub("", line))
        if match:
            # Nothing more is waited for on the queue: the drain thread keeps reading.
            return Server(match.group(1).rstrip("/"), key1, key2, process, log)


def stop_server(server: Server) -> int:
    """SIGTERM, then waits for the drain (SIGKILL after STOP_TIMEOUT). The exit code."""
    process = server.process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)
            raise AssertionError(
                f"mnemo did not stop within {STOP_TIMEOUT} s of SIGTERM; stderr:\n"
                + server.stderr_tail()
            ) from None
    return process.returncode


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A `mnemo serve` shared by the session; it must exit 0 on SIGTERM."""
    running = start_server(tmp_path_factory.mktemp("mnemo"))
    try:
        yield running
    finally:
        code = stop_server(running)
    assert code == 0, f"mnemo exited {code} after SIGTERM; stderr:\n{running.stderr_tail()}"


@pytest.fixture
def client(server: Server) -> Iterator[MnemoClient]:
    """A client of tenant t1."""
    with MnemoClient(server.url, server.key1) as c:
        yield c


@pytest.fixture
def client2(server: Server) -> Iterator[MnemoClient]:
    """A client of tenant t2."""
    with MnemoClient(server.url, server.key2) as c:
        yield c


@pytest.fixture
def user() -> str:
    """A fresh user id with a slash, a space and non-ASCII letters, so every path that
    carries it must be percent-encoded."""
    return f"maya/{uuid.uuid4().hex[:10]} ü"


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio."""
    return "asyncio"


def eventually(check: Callable[[], T], timeout: float = 15.0, what: str = "condition") -> T:
    """Calls ``check`` until it returns something truthy, for at most ``timeout`` seconds
    (the server indexes and extracts asynchronously, within milliseconds)."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s; last: {result!r}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.25)


def processed(client: MnemoClient) -> bool:
    """Whether every processor has handled every stored turn (per /readyz)."""
    ready = client.ready()
    return bool(ready.processors) and all(p.lag == 0 for p in ready.processors)


def wait_processed(client: MnemoClient, timeout: float = 15.0) -> None:
    """Waits until the processors (indexer, graph sync, ...) have no lag."""
    eventually(lambda: processed(client), timeout, "processors catching up")
