"""`mnemo mcp` driven by a real MCP client: the official Python SDK (`mcp` on PyPI)
spawns the binary over stdio, as Claude Desktop or an agent framework would, negotiates,
lists the tools and calls each of them, including with bad arguments. The same tools
over the streamable-HTTP transport at `/mcp` of `mnemo serve`, with an API key.

Run: MNEMO_BIN=/path/to/mnemo pytest clients/mcp (see README, "MCP").
"""

from __future__ import annotations

import hashlib
import os
import secrets
import signal
import subprocess
import threading
from pathlib import Path

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

REPO = Path(__file__).resolve().parents[2]


def mnemo_bin() -> str:
    """The binary under test: $MNEMO_BIN, else the release build where cargo puts it."""
    if os.environ.get("MNEMO_BIN"):
        return os.environ["MNEMO_BIN"]
    candidates = []
    if os.environ.get("CARGO_TARGET_DIR"):
        candidates.append(Path(os.environ["CARGO_TARGET_DIR"]) / "release" / "mnemo")
    candidates.append(REPO / "target" / "release" / "mnemo")
    candidates.append(Path.home() / ".cache" / "mnemo-target" / "release" / "mnemo")
    for candidate in candidates:
        if candidate.is_file():
            return str(candidate)
    pytest.fail(
        "no mnemo binary: build it (cargo build --release --bin mnemo) or set MNEMO_BIN; "
        f"looked at {', '.join(map(str, candidates))}"
    )


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def server(tmp_path: Path):
    config = tmp_path / "mnemo.toml"
    config.write_text(f'[storage]\ndata_dir = "{tmp_path / "data"}"\n')
    errlog_path = tmp_path / "stderr.log"

    def params(tenant: str) -> StdioServerParameters:
        return StdioServerParameters(
            command=mnemo_bin(),
            args=["--config", str(config), "mcp", "--tenant", tenant],
            env={"RUST_LOG": "info"},
        )

    yield params, errlog_path


def text(result) -> str:
    return "".join(block.text for block in result.content if block.type == "text")


async def until(call, done, seconds: float = 30.0):
    """Calls `call` until `done(result)`: a stored turn is indexed milliseconds later,
    and each call is the wait."""
    with anyio.fail_after(seconds):
        while True:
            result = await call()
            if done(result):
                return result


@pytest.mark.anyio
async def test_every_tool_through_the_sdk(server) -> None:
    params, errlog_path = server
    with errlog_path.open("w") as errlog:
        async with stdio_client(params("acme"), errlog=errlog) as (read, write):
            async with ClientSession(read, write) as session:
                init = await session.initialize()
                assert init.server_info.name == "mnemo"
                assert init.protocol_version >= "2025-06-18"
                assert init.capabilities.tools is not None

                listed = await session.list_tools()
                tools = {tool.name: tool for tool in listed.tools}
                assert list(tools) == [
                    "remember", "recall", "search_memory", "forget_user", "forget_turn"
                ]
                assert set(tools["remember"].input_schema["required"]) == {"user_id", "content"}
                assert set(tools["recall"].input_schema["required"]) == {"user_id", "query"}
                assert "turn_id" in tools["forget_turn"].input_schema["required"]
                assert tools["recall"].annotations.read_only_hint is True
                assert tools["forget_user"].annotations.destructive_hint is True

                stored = await session.call_tool(
                    "remember",
                    {"user_id": "maya", "content": "My dog Biscuit ate a sock on the beach.",
                     "session_id": "2026-10-27", "event_time": "2026-10-27T09:30:00Z",
                     "speaker": "Maya", "metadata": {"channel": "app"}},
                )
                assert not stored.is_error, text(stored)
                turn_id = stored.structured_content["id"]
                assert "Remembered as turn" in text(stored)
                reply = await session.call_tool(
                    "remember",
                    {"user_id": "maya", "role": "assistant", "session_id": "2026-10-27",
                     "content": "Poor Biscuit! I hope the vet visit goes well."},
                )
                assert not reply.is_error, text(reply)

                recalled = await until(
                    lambda: session.call_tool(
                        "recall", {"user_id": "maya", "query": "how is my dog?", "max_items": 5}
                    ),
                    lambda r: "sock" in text(r),
                )
                assert not recalled.is_error
                assert recalled.structured_content["prompt"] == text(recalled)
                assert recalled.structured_content["items"]
                assert "degraded" in recalled.structured_content

                found = await session.call_tool(
                    "search_memory", {"user_id": "maya", "query": "sock", "limit": 3}
                )
                assert [h["id"] for h in found.structured_content["hits"]] == [turn_id]

                # Bad arguments are tool errors the model can read; the session goes on.
                missing = await session.call_tool("remember", {"user_id": "maya"})
                assert missing.is_error and text(missing).startswith("invalid_request")
                empty = await session.call_tool("remember", {"user_id": "maya", "content": ""})
                assert empty.is_error and text(empty).startswith("invalid_input")
                typed = await session.call_tool(
                    "forget_turn", {"user_id": "maya", "turn_id": "seven"}
                )
                assert typed.is_error and text(typed).startswith("invalid_request")
                nothing = await session.call_tool(
                    "forget_turn", {"user_id": "maya", "turn_id": turn_id + 1000}
                )
                assert nothing.is_error and text(nothing).startswith("not_found")

                forgot = await session.call_tool(
                    "forget_turn", {"user_id": "maya", "turn_id": turn_id}
                )
                assert not forgot.is_error and forgot.structured_content["turns"] == 1
                gone = await session.call_tool("search_memory", {"user_id": "maya", "query": "sock"})
                assert gone.structured_content["hits"] == []
                forgot = await session.call_tool("forget_user", {"user_id": "maya"})
                assert forgot.structured_content["turns"] == 1
                await session.call_tool(
                    "remember", {"user_id": "lee", "content": "I moved to Porto in March."}
                )
    log = errlog_path.read_text()
    # Closing stdin ended the session, and the engine shut down; logs went to stderr.
    assert "serving MCP on stdio" in log, log
    assert "the MCP session ended" in log, log

    # Another tenant on the same store sees none of acme's memories.
    with errlog_path.open("w") as errlog:
        async with stdio_client(params("globex"), errlog=errlog) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                other = await session.call_tool(
                    "search_memory", {"user_id": "lee", "query": "Porto"}
                )
                assert other.structured_content["hits"] == []


@pytest.fixture
def served(tmp_path: Path):
    """`mnemo serve` on port 0 with one API key for tenant acme and one for globex."""
    keys = {"acme": secrets.token_hex(16), "globex": secrets.token_hex(16)}
    entries = ", ".join(
        f'{{ tenant = "{t}", sha256 = "{hashlib.sha256(k.encode()).hexdigest()}" }}'
        for t, k in keys.items()
    )
    config = tmp_path / "serve.toml"
    config.write_text(
        f'[storage]\ndata_dir = "{tmp_path / "data"}"\n\n'
        f'[server]\nlisten = "127.0.0.1:0"\n\n[auth]\nkeys = [{entries}]\n'
    )
    env = {k: v for k, v in os.environ.items() if k != "RUST_LOG"}
    process = subprocess.Popen(
        [mnemo_bin(), "--config", str(config), "serve"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env,
    )
    url = None
    seen = []
    assert process.stderr is not None
    for line in process.stderr:  # the server says where it listens once it serves
        seen.append(line)
        if "mnemo serving on http://" in line:
            url = line.split("serving on ", 1)[1].split()[0]
            break
    if url is None:
        process.kill()
        pytest.fail("mnemo serve did not start:\n" + "".join(seen))
    # Keep reading its log so the pipe never fills.
    threading.Thread(target=lambda: [None for _ in process.stderr], daemon=True).start()
    yield url, keys
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0


@pytest.mark.anyio
async def test_the_tools_over_streamable_http(served) -> None:
    url, keys = served

    def client(tenant: str):
        http = create_mcp_http_client(headers={"Authorization": f"Bearer {keys[tenant]}"})
        return streamable_http_client(f"{url}/mcp", http_client=http)

    async with client("acme") as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            assert init.server_info.name == "mnemo"
            listed = await session.list_tools()
            assert [t.name for t in listed.tools] == [
                "remember", "recall", "search_memory", "forget_user", "forget_turn"
            ]
            stored = await session.call_tool(
                "remember", {"user_id": "maya", "content": "I adopted a cat named Miso."}
            )
            assert not stored.is_error, text(stored)
            found = await until(
                lambda: session.call_tool("search_memory", {"user_id": "maya", "query": "cat"}),
                lambda r: r.structured_content["hits"],
            )
            assert found.structured_content["hits"][0]["id"] == stored.structured_content["id"]
            bad = await session.call_tool("recall", {"user_id": "maya"})
            assert bad.is_error and text(bad).startswith("invalid_request")

    # The key decides the tenant: globex's maya is someone else.
    async with client("globex") as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            other = await session.call_tool("search_memory", {"user_id": "maya", "query": "cat"})
            assert other.structured_content["hits"] == []
