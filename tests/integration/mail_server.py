#!/usr/bin/env python3
"""A real MTA for the SMTP tests (Debian's python3-aiosmtpd; run it with /usr/bin/python3).

mail_server.py --listen ADDRESS --port PORT --maildir DIR [--cert CERT --key KEY]
               [--no-starttls] [--require-starttls] [--hostname NAME] [--max-size N]
               [--port-file FILE] [--chunking]
    ESMTP on ADDRESS:PORT (an IPv4 or IPv6 address; PORT 0: the kernel picks one). Once it
    listens it prints one line "port N" on stdout (flushed) and, with --port-file, writes N
    to FILE (through FILE.new and a rename, as websocket_peer.py does). Runs until SIGTERM
    or SIGINT, then exits 0.

    STARTTLS is offered with CERT and KEY (PEM) unless --no-starttls; --require-starttls
    refuses everything but EHLO, NOOP, STARTTLS and QUIT before it. --hostname: the name in
    the greeting and the EHLO reply (default: this host's FQDN). --max-size: the SIZE
    extension and the message size limit (0: no limit, no SIZE; default: aiosmtpd's 32 MiB).
    No authentication is required; any sender and any recipient are accepted.

    --chunking: RFC 3030 CHUNKING (aiosmtpd itself has no BDAT; LoggingSMTP adds it). The
    EHLO reply lists "250-CHUNKING" (before "250 HELP"). "BDAT <size> [LAST]" (LAST in any
    case) is followed by exactly <size> raw octets, taken as they are (binary-safe: no
    dot-unstuffing, no line-end changes, CR LF "." CR LF is just data) and appended to the
    message; a chunk that is not LAST gets "250 2.0.0 <size> octets received", the LAST one
    (size 0 allowed) ends the message, stored as DATA's are, and gets that reply ("250 OK");
    the transaction is then over. A malformed argument gets 501 (nothing is read: the size
    is unknown). A BDAT that is refused still has its chunk read and discarded, so the
    session stays in step: 503 5.5.1 without HELO/EHLO, MAIL or RCPT; 530 before STARTTLS
    with --require-starttls (as MAIL, RCPT and DATA get); 552 5.3.4 when the message would
    exceed --max-size (the transaction is then reset, so further chunks get 503). DATA after
    BDAT chunks in one transaction gets 503 5.5.1 (RSET starts over). Without --chunking BDAT
    is an unrecognised command (500) and CHUNKING is not offered.

    Message n (1, 2, ... in the order the DATA commands, or the BDAT LAST chunks, end) is
    stored as DIR/n.eml: the content exactly as received (after dot-unstuffing for DATA; the
    chunks joined for BDAT), with no header added; DIR/n.json ({"mail_from", "rcpt_tos",
    "tls", "size", "helo", "mail_options", "rcpt_options", "peer", "framing"}, framing being
    "DATA" or "BDAT") is in place before n.eml appears, and each appears whole (written to
    .tmp, then renamed). Each message gets "250 OK".

    Sessions are logged to stderr, one line per event ("mail_server: ...").
"""
import argparse
import asyncio
import ipaddress
import json
import logging
import os
import re
import signal
import socket
import ssl
import sys

import aiosmtpd.smtp
from aiosmtpd.smtp import SMTP, Envelope, syntax


def note(message):
    print("mail_server: " + message, file=sys.stderr, flush=True)


def peer_text(peer):
    if isinstance(peer, tuple) and len(peer) >= 2:
        return "%s:%s" % (peer[0], peer[1])
    return str(peer)


def write_atomically(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, path)


class Maildir:
    """The aiosmtpd handler: accepts every sender and recipient, stores each message."""

    def __init__(self, directory):
        self.directory = directory
        self.count = 0

    def handle_STARTTLS(self, server, session, envelope):
        # Called (synchronously) once the TLS handshake after STARTTLS has completed.
        tls = session.ssl.get("ssl_object") if session.ssl else None
        if tls is not None:
            note("%s TLS %s %s" % (peer_text(session.peer), tls.version(), tls.cipher()[0]))
        else:
            note("%s TLS" % peer_text(session.peer))
        return True

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        # aiosmtpd 1.4.3's 5-argument EHLO hook: it gets the reply lines (the last being
        # "250 HELP") and returns the ones to send; with this hook aiosmtpd leaves setting
        # session.host_name to it.
        session.host_name = hostname
        if getattr(server, "chunking", False):
            responses.insert(len(responses) - 1, "250-CHUNKING")
        return responses

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        n = self.count
        content = envelope.original_content or b""
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "tls": session.ssl is not None,
            "size": len(content),
            "helo": session.host_name,
            "mail_options": list(envelope.mail_options),
            "rcpt_options": list(envelope.rcpt_options),
            "peer": peer_text(session.peer),
            "framing": getattr(envelope, "framing", "DATA"),
        }
        base = os.path.join(self.directory, str(n))
        write_atomically(base + ".json", (json.dumps(meta) + "\n").encode())
        write_atomically(base + ".eml", content)
        note("%s stored %d.eml (%d bytes, %s, from %r to %s, tls %s)" % (
            peer_text(session.peer), n, len(content), meta["framing"], envelope.mail_from,
            ",".join(envelope.rcpt_tos), "yes" if meta["tls"] else "no"))
        return "250 OK"


class ChunkingEnvelope(Envelope):
    """An envelope that knows how its message came: framing "DATA" or "BDAT"; bdat is the
    content of the BDAT chunks so far (None until the first one)."""

    def __init__(self):
        super().__init__()
        self.framing = "DATA"
        self.bdat = None


BDAT_ARG = re.compile(r"([0-9]+)(?:[ \t]+(LAST))?", re.IGNORECASE)
DISCARD_PIECE = 1 << 16


class LoggingSMTP(SMTP):
    """aiosmtpd's SMTP, logging connections and disconnections, with BDAT (RFC 3030 CHUNKING)
    when chunking is set (otherwise BDAT stays an unrecognised command)."""

    def __init__(self, handler, *, chunking=False, **kwargs):
        self.chunking = chunking
        super().__init__(handler, **kwargs)
        if not chunking:
            self._smtp_methods.pop("BDAT", None)

    def _create_envelope(self):
        return ChunkingEnvelope()

    async def _discard(self, size):
        while size > 0:
            piece = min(size, DISCARD_PIECE)
            await self._reader.readexactly(piece)
            size -= piece

    @syntax("BDAT <chunk-size> [LAST]")
    async def smtp_BDAT(self, arg):
        match = BDAT_ARG.fullmatch(arg or "")
        if match is None:
            await self.push("501 5.5.4 Syntax: BDAT <chunk-size> [LAST]")
            return
        size, last = int(match.group(1)), match.group(2) is not None
        envelope = self.envelope
        refusal = None
        if self.require_starttls and not self._tls_protocol:
            # aiosmtpd's own check would answer 530 before reading the chunk (BDAT is let
            # through it in serve()), leaving the chunk to be taken for commands.
            refusal = "530 Must issue a STARTTLS command first"
        elif not self.session.host_name:
            refusal = "503 5.5.1 Error: send EHLO first"
        elif self._auth_required and not self.session.authenticated:
            refusal = "530 5.7.0 Authentication required"
        elif not envelope.mail_from:
            refusal = "503 5.5.1 Error: need MAIL command"
        elif not envelope.rcpt_tos:
            refusal = "503 5.5.1 Error: need RCPT command"
        elif self.data_size_limit and len(envelope.bdat or b"") + size > self.data_size_limit:
            refusal = "552 5.3.4 Error: message size exceeds fixed maximum message size"
            self._set_post_data_state()
        if refusal is not None:
            # RFC 3030: a refused BDAT's chunk is still read (and discarded).
            await self._discard(size)
            await self.push(refusal)
            return

        chunk = await self._reader.readexactly(size) if size else b""
        if envelope.bdat is None:
            envelope.bdat = bytearray()
        envelope.bdat += chunk
        if not last:
            await self.push("250 2.0.0 %d octets received" % size)
            return

        content = bytes(envelope.bdat)
        envelope.bdat = None
        envelope.framing = "BDAT"
        envelope.original_content = content
        envelope.content = content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is aiosmtpd.smtp.MISSING else status)

    @syntax("DATA")
    async def smtp_DATA(self, arg):
        if self.envelope.bdat is not None:
            await self.push("503 5.5.1 Error: DATA after BDAT in one transaction")
            return
        await super().smtp_DATA(arg)

    def connection_made(self, transport):
        starttls = self._original_transport is not None
        super().connection_made(transport)
        if not starttls:
            note("%s connect" % peer_text(self.session.peer))

    def connection_lost(self, error):
        if self.session is not None:
            note("%s disconnect%s" % (peer_text(self.session.peer), " (%s)" % error if error else ""))
        super().connection_lost(error)


def parse_args():
    parser = argparse.ArgumentParser(description="A test MTA (aiosmtpd) storing each message in a directory.")
    parser.add_argument("--listen", required=True, help="the IPv4 or IPv6 address to bind")
    parser.add_argument("--port", type=int, required=True, help="the port (0: the kernel picks)")
    parser.add_argument("--maildir", required=True, help="where n.eml and n.json go (created if missing)")
    parser.add_argument("--cert", help="PEM certificate chain for STARTTLS")
    parser.add_argument("--key", help="PEM private key for STARTTLS")
    parser.add_argument("--no-starttls", action="store_true", help="do not offer STARTTLS even with --cert")
    parser.add_argument("--require-starttls", action="store_true", help="refuse mail before STARTTLS")
    parser.add_argument("--hostname", help="the name in the greeting and the EHLO reply")
    parser.add_argument("--max-size", type=int, help="SIZE / message size limit in bytes (0: none)")
    parser.add_argument("--port-file", help="also write the port to this file (atomically)")
    parser.add_argument("--chunking", action="store_true", help="offer CHUNKING and accept BDAT (RFC 3030)")
    args = parser.parse_args()
    if (args.cert is None) != (args.key is None):
        parser.error("--cert and --key go together")
    tls = args.cert is not None and not args.no_starttls
    if args.require_starttls and not tls:
        parser.error("--require-starttls needs --cert and --key (and no --no-starttls)")
    if args.max_size is not None and args.max_size < 0:
        parser.error("--max-size must be >= 0")
    if not 0 <= args.port <= 65535:
        parser.error("--port must be 0..65535")
    try:
        args.family = socket.AF_INET6 if ipaddress.ip_address(args.listen).version == 6 else socket.AF_INET
    except ValueError:
        parser.error("--listen must be an IP address: %r" % args.listen)
    args.tls = tls
    return args


async def serve(args):
    context = None
    if args.tls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
    os.makedirs(args.maildir, exist_ok=True)
    handler = Maildir(args.maildir)

    sock = socket.socket(args.family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if args.family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind((args.listen, args.port))
    sock.listen(128)
    sock.setblocking(False)
    port = sock.getsockname()[1]

    loop = asyncio.get_running_loop()
    options = {"auth_require_tls": False, "chunking": args.chunking}
    if args.chunking:
        # aiosmtpd answers 530 to commands not in this set before STARTTLS (with
        # require_starttls) without calling them; smtp_BDAT gives that answer itself, after
        # reading the chunk that follows the command line.
        aiosmtpd.smtp.ALLOWED_BEFORE_STARTTLS.add("BDAT")
    if args.max_size is not None:
        options["data_size_limit"] = args.max_size or None

    def factory():
        return LoggingSMTP(handler, tls_context=context, require_starttls=args.require_starttls,
                           hostname=args.hostname, loop=loop, **options)

    server = await loop.create_server(factory, sock=sock)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    if args.port_file:
        with open(args.port_file + ".new", "w") as f:
            f.write(str(port))
        os.rename(args.port_file + ".new", args.port_file)
    print("port %d" % port, flush=True)
    note("listening on %s port %d (STARTTLS %s%s%s)" % (
        args.listen, port, "offered" if context else "not offered",
        ", required" if args.require_starttls else "", ", CHUNKING" if args.chunking else ""))

    await stop.wait()
    note("stopping")
    server.close()


def main():
    args = parse_args()
    # aiosmtpd's own warnings and errors (a failed TLS handshake, an exception in a session).
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING,
                        format="mail_server: aiosmtpd %(levelname)s %(message)s")
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
