#!/usr/bin/env python3
"""Real WebSocket peers (python3-websockets) for the proxy-node's WebSocket tests.

server CERT KEY PORTFILE LOG
    A TLS WebSocket server on 127.0.0.1, port 0 (plain ws:// when CERT is "-"); writes its
    port to PORTFILE once it listens.
    Every message it receives is logged to LOG as "<text|binary> <length> <sha256>".
    Paths: /echo echoes each message; /push/<hex> first sends that payload as one text
    message, /push-fragments/<hex>,<hex>... as one text message in those fragments, then
    echoes.  permessage-deflate is accepted when the client offers it.
    Plain HTTP GETs, for a browser: /page is a page whose script opens WebSockets to /echo
    (a clean message, then the EICAR test string) and writes what happened into the page;
    its /hold image keeps the page loading until the script calls /done (at most 20 s), so
    a browser's --dump-dom shows the outcome.

client PROXY_PORT HOST PORT CAFILE PATH COMPRESSION MESSAGE...
    CONNECT through the proxy on 127.0.0.1, TLS trusting only CAFILE, the WebSocket
    handshake for wss://HOST:PORT/PATH (ws:// in plaintext when CAFILE is "-"; COMPRESSION:
    deflate or none), then for each MESSAGE
    (text:FILE, binary:FILE or fragments:FILE,FILE,... for a fragmented text message: the
    payloads are read from those files)
    sends it and waits for one message back.  With no MESSAGE it waits for one message.
    Prints one JSON object: the messages received (kind, length, sha256), and how the
    connection closed (code and reason as the client saw them).
"""
import asyncio
import hashlib
import http
import json
import socket
import ssl
import sys

import websockets


def describe(message):
    data = message.encode() if isinstance(message, str) else message
    kind = "text" if isinstance(message, str) else "binary"
    return {"kind": kind, "length": len(data), "sha256": hashlib.sha256(data).hexdigest()}


PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>websocket</title></head><body>
<p id="out">running</p>
<script>
const results = [];
function run(message, label) {
  return new Promise(resolve => {
    const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/echo");
    ws.onopen = () => ws.send(message);
    ws.onmessage = e => { results.push(label + ":echo:" + e.data.length); ws.close(1000); };
    ws.onerror = () => results.push(label + ":error");
    ws.onclose = e => { results.push(label + ":close:" + e.code); resolve(); };
  });
}
(async () => {
  await run("hello from the browser", "clean");
  // The EICAR test string, put together at run time.
  await run("X5O!P%@AP[4\\\\PZX54(P^)7CC)7}$" + "EICAR-STANDARD-ANTIVIRUS-" + "TEST-FILE!$H+H*", "eicar");
  document.getElementById("out").textContent = "results " + results.join(" ");
  fetch("/done");
})();
</script>
<img src="/hold" alt="">
</body></html>
"""


async def serve(cert, key, portfile, log):
    ctx = None
    if cert != "-":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
    done = asyncio.Event()

    async def plain_http(path, headers):
        if headers.get("Upgrade", "").lower() == "websocket":
            return None
        if path == "/page":
            done.clear()
            return http.HTTPStatus.OK, [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")], PAGE.encode()
        if path == "/done":
            done.set()
            return http.HTTPStatus.NO_CONTENT, [("Cache-Control", "no-store")], b""
        if path == "/hold":
            try:
                await asyncio.wait_for(done.wait(), 20)
            except asyncio.TimeoutError:
                pass
            return http.HTTPStatus.NOT_FOUND, [("Cache-Control", "no-store")], b""
        return http.HTTPStatus.NOT_FOUND, [], b""

    async def handler(ws, path):
        try:
            if path.startswith("/push/"):
                await ws.send(bytes.fromhex(path[len("/push/"):]).decode("utf-8", "replace"))
            elif path.startswith("/push-fragments/"):
                parts = [bytes.fromhex(p).decode("utf-8", "replace") for p in path[len("/push-fragments/"):].split(",")]
                await ws.send(parts)
            async for message in ws:
                d = describe(message)
                with open(log, "a") as f:
                    f.write("%s %d %s\n" % (d["kind"], d["length"], d["sha256"]))
                await ws.send(message)
        except websockets.exceptions.ConnectionClosed:
            pass

    async with websockets.serve(handler, "127.0.0.1", 0, ssl=ctx, max_size=None, process_request=plain_http) as server:
        port = server.sockets[0].getsockname()[1]
        with open(portfile + ".new", "w") as f:
            f.write(str(port))
        import os
        os.rename(portfile + ".new", portfile)
        await asyncio.Future()


def read(path):
    with open(path, "rb") as f:
        return f.read()


def parse_message(spec):
    kind, _, value = spec.partition(":")
    if kind == "text":
        return read(value).decode()
    if kind == "binary":
        return read(value)
    if kind == "fragments":
        return [read(p).decode() for p in value.split(",")]
    raise SystemExit("unknown message kind: " + spec)


async def client(proxy_port, host, port, cafile, path, compression, specs):
    sock = socket.create_connection(("127.0.0.1", int(proxy_port)), timeout=10)
    target = "%s:%s" % (host, port)
    sock.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, target)).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        if not chunk:
            break
        head += chunk
    result = {"connect": head.split(b"\r\n")[0].decode(errors="replace"), "received": []}
    if not head.startswith(b"HTTP/1.1 200"):
        print(json.dumps(result))
        return
    sock.setblocking(False)
    tls = cafile != "-"
    options = {"ssl": ssl.create_default_context(cafile=cafile), "server_hostname": host} if tls else {}
    try:
        async with websockets.connect(
            "%s://%s%s" % ("wss" if tls else "ws", target, path), sock=sock, **options,
            compression="deflate" if compression == "deflate" else None, max_size=None,
            open_timeout=10, close_timeout=5) as ws:
            result["extensions"] = ws.response_headers.get("Sec-WebSocket-Extensions", "")
            messages = [parse_message(s) for s in specs] or [None]
            for m in messages:
                if m is not None:
                    await ws.send(m)
                reply = await asyncio.wait_for(ws.recv(), 10)
                result["received"].append(describe(reply))
    except websockets.exceptions.ConnectionClosed as e:
        rcvd = getattr(e, "rcvd", None)
        result["close_code"] = rcvd.code if rcvd is not None else e.code
        result["close_reason"] = rcvd.reason if rcvd is not None else e.reason
    except asyncio.TimeoutError:
        result["timeout"] = True
    except Exception as e:  # the handshake failed: say how
        result["error"] = "%s: %s" % (type(e).__name__, e)
    print(json.dumps(result))


def main():
    if len(sys.argv) >= 6 and sys.argv[1] == "server":
        asyncio.run(serve(*sys.argv[2:6]))
    elif len(sys.argv) >= 8 and sys.argv[1] == "client":
        asyncio.run(client(*sys.argv[2:8], sys.argv[8:]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
