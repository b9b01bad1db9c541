"""Bare baselines: the least a server can do, built from the same libraries as the desk.

``python -m benchmarks.bare ws --port P``
    A bare aiohttp WebSocket server with the desk's socket settings. It holds idle sockets,
    echoes text frames, and on ``{"type": "broadcast"}`` sends one small frame to every other
    socket it holds (the fan-out limit of aiohttp in one process).

``python -m benchmarks.bare relay --port P``
    Two plain pages (``/caller``, ``/callee``) and a minimal WebSocket relay between them: the
    bare two-page WebRTC call that click-to-face is measured against.
"""

from __future__ import annotations

import argparse
import json
import time

from aiohttp import WSMsgType, web

from benchmarks.harness import HOST, raise_nofile

# The desk's socket settings (humandesk.signaling.endpoints.new_socket).
SOCKET_OPTIONS = {
    "max_msg_size": 64 * 1024,
    "compress": False,
    "heartbeat": 25.0,
    "autoping": True,
    "timeout": 2.0,
}


def ws_app() -> web.Application:
    sockets: set[web.WebSocketResponse] = set()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(**SOCKET_OPTIONS)  # type: ignore[arg-type]
        await ws.prepare(request)
        sockets.add(ws)
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                if msg.data.startswith('{"type": "broadcast"'):
                    seq = json.loads(msg.data).get("seq", 0)
                    frame = json.dumps({"type": "position", "position": seq, "eta_seconds": 0})
                    for other in list(sockets):
                        if other is not ws:
                            await other.send_str(frame)
                    await ws.send_str(
                        json.dumps({"type": "broadcast_done", "at": time.perf_counter()})
                    )
                else:
                    await ws.send_str(msg.data)
        finally:
            sockets.discard(ws)
        return ws

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"sockets": len(sockets)})

    app = web.Application()
    app.router.add_get("/ws", handler)
    app.router.add_get("/healthz", healthz)
    return app


CALL_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>bare call: {role}</title></head>
<body data-role="{role}">
<button id="call" data-testid="bare-call">Call</button>
<video id="remote" data-testid="bare-remote-video" autoplay playsinline muted></video>
<script>
"use strict";
// The least a two-page WebRTC call needs: camera at load, one WebSocket relay, trickle ICE.
// The callee plays the desk's agent (it makes the offer), the caller the visitor (it clicks).
const role = document.body.dataset.role;
let stream = null, pc = null;
const pending = [];
window.hdPeer = null;
window.bareReady = false;
const scheme = location.protocol === "https:" ? "wss://" : "ws://";
const ws = new WebSocket(scheme + location.host + "/ws");
const send = (m) => ws.send(JSON.stringify(m));
const media = navigator.mediaDevices.getUserMedia({{video: true, audio: true}})
  .then((s) => (stream = s));
Promise.all([media, new Promise((r) => (ws.onopen = r))]).then(() => {{
  send({{type: "hello", role}});
  window.bareReady = true;
}});
function newPc() {{
  pc = new RTCPeerConnection({{iceServers: []}});
  window.hdPeer = pc;
  for (const t of stream.getTracks()) pc.addTrack(t, stream);
  pc.onicecandidate = (e) =>
    send({{type: "signal", candidate: e.candidate ? e.candidate.toJSON() : null}});
  pc.ontrack = (e) => {{
    const v = document.getElementById("remote");
    if (v.srcObject !== e.streams[0]) v.srcObject = e.streams[0];
    v.play().catch(() => {{}});
  }};
  return pc;
}}
ws.onmessage = async (ev) => {{
  const m = JSON.parse(ev.data);
  if (m.type === "call" && role === "callee") {{
    newPc();
    await pc.setLocalDescription(await pc.createOffer());
    send({{type: "signal", description: pc.localDescription.toJSON()}});
  }} else if (m.type === "signal") {{
    if (m.description) {{
      if (!pc) newPc();
      await pc.setRemoteDescription(m.description);
      for (const c of pending.splice(0)) await pc.addIceCandidate(c);
      if (m.description.type === "offer") {{
        await pc.setLocalDescription(await pc.createAnswer());
        send({{type: "signal", description: pc.localDescription.toJSON()}});
      }}
    }} else if (pc && pc.remoteDescription) {{
      await pc.addIceCandidate(m.candidate || undefined);
    }} else {{
      pending.push(m.candidate || undefined);
    }}
  }}
}};
document.getElementById("call").addEventListener("click", () => send({{type: "call"}}));
</script></body></html>
"""


def relay_app() -> web.Application:
    peers: dict[str, web.WebSocketResponse] = {}

    async def relay(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(**SOCKET_OPTIONS)  # type: ignore[arg-type]
        await ws.prepare(request)
        role = ""
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            if data.get("type") == "hello":
                role = str(data.get("role"))
                peers[role] = ws
                continue
            other = peers.get("callee" if role == "caller" else "caller")
            if other is not None and not other.closed:
                await other.send_str(msg.data)
        if peers.get(role) is ws:
            del peers[role]
        return ws

    def page(role: str) -> web.Response:
        return web.Response(text=CALL_PAGE.format(role=role), content_type="text/html")

    async def caller(_request: web.Request) -> web.Response:
        return page("caller")

    async def callee(_request: web.Request) -> web.Response:
        return page("callee")

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/ws", relay)
    app.router.add_get("/caller", caller)
    app.router.add_get("/callee", callee)
    app.router.add_get("/healthz", healthz)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bare")
    parser.add_argument("mode", choices=("ws", "relay"))
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    raise_nofile()
    app = ws_app() if args.mode == "ws" else relay_app()
    web.run_app(app, host=HOST, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
