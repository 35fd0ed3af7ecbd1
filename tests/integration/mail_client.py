#!/usr/bin/env python3
"""An SMTP client for the mail tests and the mail benchmark (Python's smtplib).

mail_client.py --server HOST:PORT [--starttls] [--cafile CA] [--sni NAME] [--repeat N]
               [--bdat SIZE] [--inject] [--from ADDR] [--to ADDR] MESSAGE...
    One SMTP session: EHLO, STARTTLS if asked (the server's certificate verified against
    CA for NAME, or not verified without --cafile), EHLO again, then each MESSAGE file in
    turn (N times over with --repeat) as one mail transaction (sent as it is, CRLF lines
    expected; with --bdat, in BDAT chunks of SIZE bytes, the last one BDAT LAST), QUIT.
    Prints one JSON object on stdout:
      {"greeting": code, "ehlo": code (the first), "extensions": [...], "tls": bool, "peer_names": [...],
       "results": [{"code": n, "text": "..."}...], "error": "..." (if the session broke),
       "seconds": wall time of the transactions}
    A refused message (4xx/5xx) is a result, not an error: the session goes on with the
    next one.

    --inject: instead, the STARTTLS command-injection probe (CVE-2011-0411): sends
    "STARTTLS\\r\\nMAIL FROM:<injected@attacker.example>\\r\\n" in one write, completes the
    TLS handshake, sends EHLO and then "RCPT TO:<victim@example.test>". A server that
    discarded the injected MAIL answers the RCPT with 503; one that ran it, with 250.
    Prints {"starttls": code, "rcpt": code, "tls": bool}.
"""
import argparse
import json
import smtplib
import socket
import ssl
import sys
import time


def context(args):
    if args.cafile:
        ctx = ssl.create_default_context(cafile=args.cafile)
    else:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def peer_names(sock):
    try:
        cert = sock.getpeercert()
    except (AttributeError, ValueError):
        return []
    if not cert:
        return []
    return [v for (k, v) in cert.get("subjectAltName", ()) if k == "DNS"]


def session(args, host, port, out):
    out.update({"results": [], "tls": False, "extensions": [], "peer_names": []})
    s = smtplib.SMTP(timeout=60)
    code, _ = s.connect(host, port)
    out["greeting"] = code
    code, _ = s.ehlo("client.example")
    out["ehlo"] = code
    if args.starttls:
        # smtplib checks the name against server_hostname: --sni, else HOST.
        s._host = args.sni or host
        code, text = s.starttls(context=context(args))
        out["tls"] = code == 220
        out["peer_names"] = peer_names(s.sock)
        s.ehlo("client.example")
    out["extensions"] = sorted(s.esmtp_features.keys())
    messages = []
    for path in args.messages:
        with open(path, "rb") as f:
            messages.append(f.read())
    started = time.monotonic()
    for _ in range(args.repeat):
        for body in messages:
            if args.bdat:
                out["results"].append(send_bdat(s, args, body))
                continue
            try:
                s.sendmail(args.sender, [args.to], body)
                out["results"].append({"code": 250, "text": ""})
            except smtplib.SMTPDataError as e:
                out["results"].append({"code": e.smtp_code, "text": e.smtp_error.decode("utf-8", "replace")})
            except smtplib.SMTPSenderRefused as e:
                out["results"].append({"code": e.smtp_code, "text": e.smtp_error.decode("utf-8", "replace")})
            except smtplib.SMTPRecipientsRefused as e:
                code, text = list(e.recipients.values())[0]
                out["results"].append({"code": code, "text": text.decode("utf-8", "replace")})
    out["seconds"] = time.monotonic() - started
    try:
        s.quit()
    except smtplib.SMTPException:
        pass


def send_bdat(s, args, body):
    """One transaction in BDAT chunks; the first refusal, else the reply to BDAT LAST."""
    for step in (lambda: s.mail(args.sender), lambda: s.rcpt(args.to)):
        code, text = step()
        if code >= 400:
            return {"code": code, "text": text.decode("utf-8", "replace")}
    at = 0
    while True:
        chunk = body[at:at + args.bdat]
        at += len(chunk)
        last = at >= len(body)
        s.send(("BDAT %d%s\r\n" % (len(chunk), " LAST" if last else "")).encode() + chunk)
        code, text = s.getreply()
        if code >= 400 or last:
            if code >= 400 and not last:
                s.rset()
            return {"code": code, "text": text.decode("utf-8", "replace")}


def read_reply(f):
    code = None
    while True:
        line = f.readline()
        if not line:
            raise ConnectionError("closed")
        code = int(line[:3])
        if line[3:4] != b"-":
            return code


def inject(args, host, port, out):
    raw = socket.create_connection((host, port), timeout=30)
    f = raw.makefile("rb")
    read_reply(f)
    raw.sendall(b"EHLO client.example\r\n")
    read_reply(f)
    raw.sendall(b"STARTTLS\r\nMAIL FROM:<injected@attacker.example>\r\n")
    starttls = read_reply(f)
    out.update({"starttls": starttls, "tls": False})
    if starttls != 220:
        return
    tls = context(args).wrap_socket(raw, server_hostname=args.sni or host)
    out["tls"] = True
    g = tls.makefile("rb")
    tls.sendall(b"EHLO client.example\r\n")
    read_reply(g)
    tls.sendall(b"RCPT TO:<victim@example.test>\r\n")
    out["rcpt"] = read_reply(g)
    tls.sendall(b"QUIT\r\n")
    try:
        read_reply(g)
    except (ConnectionError, OSError, ValueError):
        pass


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--server", required=True)
    p.add_argument("--starttls", action="store_true")
    p.add_argument("--cafile")
    p.add_argument("--sni")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--inject", action="store_true")
    p.add_argument("--bdat", type=int, default=0)
    p.add_argument("--from", dest="sender", default="sender@client.example")
    p.add_argument("--to", default="rcpt@dest.example")
    p.add_argument("messages", nargs="*")
    args = p.parse_args()
    host, _, port = args.server.rpartition(":")
    out = {}
    try:
        if args.inject:
            inject(args, host, int(port), out)
        else:
            session(args, host, int(port), out)
    except (OSError, smtplib.SMTPException, ValueError) as e:
        out["error"] = "%s: %s" % (type(e).__name__, e)
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
