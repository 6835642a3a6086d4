"""Warden's Streamable HTTP transport driven by the official Python MCP SDK.

Usage: python_client.py <url> <token>   (url: http://127.0.0.1:<port>/mcp)

With `mcp` 2.3.0 (tests/clients/requirements.txt), over an HTTP client that
sends `Authorization: Bearer <token>`, once per protocol era the SDK speaks:
- `legacy`: the `initialize` handshake (2025-11-25, a session id);
- `auto`, the SDK's default: `server/discover`, which Warden answers, so the
  stateless 2026-07-28 protocol.
Each time it
- lists the tools: codex, codex-reply, listSessions and ping are there;
- calls codex `flood:5|10` with a progress callback: at least 5 progress
  notifications arrive, and the answer is "reported 5 events of 10 bytes";
- calls codex `loop` and cancels it after a second the SDK's way (cancelling
  the scope awaiting the call). At 2025-11-25 the SDK then POSTs
  `notifications/cancelled` for the call's id, which the server must accept
  (202); at 2026-07-28 it sends no notification but closes the call's POST,
  the cancellation signal of that protocol;
- then `ping` answers "pong", and `listSessions` lists the flood's session
  but not the cancelled loop's.

The server's codex agent must be the hostile test agent with a CPU budget
well over a second, so that `loop` spins until cancelled. Python 3.11+.

Exits 0 printing one JSON line of what it saw, by era; otherwise exits 1
with the reason on stderr. The messages POSTed and the HTTP statuses
answering them are taken from the HTTP client's event hooks.
"""

import json
import sys

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client


def check(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


async def run(url: str, token: str, mode: str) -> dict:
    posted: list[dict] = []  # the JSON-RPC messages POSTed, each with the HTTP status once answered

    async def on_request(request: httpx2.Request) -> None:
        if request.method == "POST":
            request.extensions["posted"] = json.loads(request.content)
            posted.append(request.extensions["posted"])

    async def on_response(response: httpx2.Response) -> None:
        if "posted" in response.request.extensions:
            response.request.extensions["posted"]["status"] = response.status_code

    def cancels() -> list[dict]:
        return [m for m in posted if m.get("method") == "notifications/cancelled"]

    flood_session, loop_session = f"py-{mode}-flood", f"py-{mode}-loop"
    http = httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {token}"},
        timeout=httpx2.Timeout(30, read=300),
        event_hooks={"request": [on_request], "response": [on_response]},
    )
    async with http, Client(streamable_http_client(url, http_client=http), mode=mode) as client:
        seen: dict = {"protocolVersion": client.protocol_version}

        tools = [tool.name for tool in (await client.list_tools()).tools]
        for name in ("codex", "codex-reply", "listSessions", "ping"):
            check(name in tools, f"{name} missing from tools/list: {tools}")
        seen["tools"] = tools

        progress: list[float] = []

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append(value)

        flood = await client.call_tool(
            "codex", {"prompt": "flood:5|10", "sessionId": flood_session}, progress_callback=on_progress
        )
        text = flood.content[0].text if flood.content else None
        check(not flood.is_error and text == "reported 5 events of 10 bytes", f"the flood call answered {flood}")
        check(len(progress) >= 5, f"{len(progress)} progress notifications arrived, not 5: {progress}")
        seen["progress"] = progress

        with anyio.move_on_after(1) as waited:
            loop = await client.call_tool("codex", {"prompt": "loop", "sessionId": loop_session})
            raise AssertionError(f"the loop call returned instead of spinning: {loop}")
        check(waited.cancelled_caught, "the loop call was not cancelled")
        loop_ids = [m["id"] for m in posted if m.get("method") == "tools/call"
                    and m["params"]["arguments"]["sessionId"] == loop_session]
        check(len(loop_ids) == 1, f"the loop call was not POSTed once: {posted}")
        if mode == "legacy":
            # The transport POSTs the SDK's cancel in the background: give it a moment to be answered.
            with anyio.move_on_after(5):
                while not any("status" in c for c in cancels()):
                    await anyio.sleep(0.05)
            check([c["params"]["requestId"] for c in cancels()] == loop_ids,
                  f"no notifications/cancelled for the loop's request {loop_ids}: {posted}")
            check(cancels()[0].get("status") == 202, f"the server answered the cancel with {cancels()[0]}")
            seen["cancelled"] = cancels()[0]["params"]

        pong = await client.call_tool("ping", {})
        check((pong.structured_content or {}).get("status") == "pong", f"ping answered {pong}")

        listed = await client.call_tool("listSessions", {})
        sessions = [s["id"] for s in (listed.structured_content or {}).get("sessions", [])]
        check(flood_session in sessions, f"the flood's session is not listed: {sessions}")
        check(loop_session not in sessions, f"the cancelled loop's session was recorded: {sessions}")
        seen["sessions"] = sessions
        # Messages go out in order: had the cancel been POSTed, it would have been before these calls.
        check(mode == "legacy" or not cancels(), f"a notifications/cancelled was POSTed at 2026-07-28: {posted}")
        return seen


async def both(url: str, token: str) -> dict:
    return {mode: await run(url, token, mode) for mode in ("legacy", "auto")}


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        seen = anyio.run(both, sys.argv[1], sys.argv[2])
    except* AssertionError as failures:  # raised inside the SDK's task groups, so grouped
        for failure in leaves(failures):
            print(f"python_client: FAILED: {failure}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(seen))
    return 0


def leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in leaves(inner)]
    return [error]


if __name__ == "__main__":
    sys.exit(main())
