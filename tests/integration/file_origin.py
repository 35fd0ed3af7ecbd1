#!/usr/bin/env python3
"""A file server for the tests that run origins in network namespaces of their own.

file_origin.py ADDRESS PORT CERT KEY DIR
    Serves the files under DIR over HTTPS on ADDRESS:PORT with CERT and KEY (PEM), or over
    plain HTTP when CERT is "-". Runs until it is terminated.
"""
import functools
import http.server
import ssl
import sys


def main():
    address, port, cert, key, root = sys.argv[1:6]
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=root)
    server = http.server.ThreadingHTTPServer((address, int(port)), handler)
    if cert != "-":
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
