#include "upstream/reason.hpp"

namespace proxy {

std::string_view code(Reason r) {
    switch (r) {
        case Reason::none: return "none";
        case Reason::expired: return "expired";
        case Reason::not_yet_valid: return "not_yet_valid";
        case Reason::self_signed: return "self_signed";
        case Reason::unknown_issuer: return "unknown_issuer";
        case Reason::hostname_mismatch: return "hostname_mismatch";
        case Reason::weak_signature: return "weak_signature";
        case Reason::weak_key: return "weak_key";
        case Reason::revoked: return "revoked";
        case Reason::bad_certificate: return "bad_certificate";
        case Reason::protocol_version: return "protocol_version";
        case Reason::insecure_cipher: return "insecure_cipher";
        case Reason::insecure_renegotiation: return "insecure_renegotiation";
        case Reason::handshake_failed: return "handshake_failed";
        case Reason::dns_failed: return "dns_failed";
        case Reason::connect_failed: return "connect_failed";
        case Reason::timeout: return "timeout";
        case Reason::malformed_request: return "malformed_request";
        case Reason::method_not_allowed: return "method_not_allowed";
        case Reason::request_too_large: return "request_too_large";
        case Reason::not_tls: return "not_tls";
        case Reason::client_handshake_failed: return "client_handshake_failed";
        case Reason::ca_unavailable: return "ca_unavailable";
        case Reason::certificate_refused: return "certificate_refused";
        case Reason::overloaded: return "overloaded";
        case Reason::shutting_down: return "shutting_down";
        case Reason::client_not_allowed: return "client_not_allowed";
        case Reason::unsupported_client_tls: return "unsupported_client_tls";
        case Reason::client_certificate_required: return "client_certificate_required";
        case Reason::bypass_pattern: return "pattern";
        case Reason::bypass_client_certificate: return "client_certificate";
        case Reason::bypass_learned: return "learned";
        case Reason::bypass_rule: return "rule";
        case Reason::inspection: return "inspection";
        case Reason::malformed_http: return "malformed_http";
        case Reason::not_http: return "not_http";
        case Reason::destination_not_allowed: return "destination_not_allowed";
        case Reason::client_connection_limit: return "client_connection_limit";
        case Reason::malformed_websocket: return "malformed_websocket";
        case Reason::websocket_too_big: return "websocket_too_big";
        case Reason::malformed_http2: return "malformed_http2";
        case Reason::http2_flood: return "http2_flood";
        case Reason::no_original_destination: return "no_original_destination";
        case Reason::destination_loop: return "destination_loop";
        case Reason::no_sni: return "no_sni";
        case Reason::no_starttls: return "no_starttls";
        case Reason::malformed_smtp: return "malformed_smtp";
    }
    return "unknown";
}

std::string_view describe(Reason r) {
    switch (r) {
        case Reason::none: return "No error.";
        case Reason::expired: return "The server's certificate has expired.";
        case Reason::not_yet_valid: return "The server's certificate is not valid yet (its notBefore date is in the future).";
        case Reason::self_signed: return "The server's certificate is self-signed and not trusted.";
        case Reason::unknown_issuer:
            return "The server's certificate was issued by an unknown or untrusted certificate authority.";
        case Reason::hostname_mismatch: return "The server's certificate is not valid for this host name (wrong host).";
        case Reason::weak_signature:
            return "The server's certificate is signed with a weak algorithm (MD5 or SHA-1), which is refused.";
        case Reason::weak_key: return "The server's certificate uses a key that is too weak (e.g. RSA below 2048 bits).";
        case Reason::revoked: return "The server's certificate has been revoked (stapled OCSP response).";
        case Reason::bad_certificate: return "The server's certificate failed verification.";
        case Reason::protocol_version:
            return "The server supports only an obsolete TLS version; TLS 1.2 or newer is required.";
        case Reason::insecure_cipher:
            return "The server offers no secure cipher suite (forward-secret AEAD, e.g. ECDHE with AES-GCM); it "
                   "likely supports only obsolete ones such as 3DES or CBC.";
        case Reason::insecure_renegotiation: return "The server does not support secure renegotiation.";
        case Reason::handshake_failed: return "The TLS handshake with the server failed.";
        case Reason::dns_failed: return "The server's name could not be resolved.";
        case Reason::connect_failed: return "The server could not be reached.";
        case Reason::timeout: return "The server did not answer in time.";
        case Reason::malformed_request: return "The proxy request is malformed.";
        case Reason::method_not_allowed: return "This proxy accepts CONNECT and absolute-form HTTP requests only.";
        case Reason::request_too_large: return "The proxy request head is too large.";
        case Reason::not_tls: return "The tunnel does not carry TLS; only TLS tunnels are allowed.";
        case Reason::client_handshake_failed: return "The TLS handshake with the client failed.";
        case Reason::ca_unavailable:
            return "The certificate service is unavailable, so no certificate can be made for this new host. Cached "
                   "hosts keep working; try again shortly.";
        case Reason::certificate_refused: return "The certificate service refused to issue a certificate for this name.";
        case Reason::overloaded: return "The proxy is at its connection limit.";
        case Reason::shutting_down: return "The proxy is shutting down.";
        case Reason::client_not_allowed: return "This client address may not use the proxy.";
        case Reason::unsupported_client_tls:
            return "The client offers only TLS versions or cipher suites the proxy does not support (TLS 1.2 with "
                   "ECDHE-ECDSA and AES-GCM or ChaCha20, or TLS 1.3, is required).";
        case Reason::client_certificate_required:
            return "The server requires a client certificate, which cannot be presented through the proxy; this "
                   "proxy is configured not to tunnel such servers.";
        case Reason::bypass_pattern: return "Tunnelled without decryption: the host matches a bypass pattern.";
        case Reason::bypass_client_certificate:
            return "Tunnelled without decryption: the server asks for a client certificate.";
        case Reason::bypass_learned:
            return "Tunnelled without decryption: a client rejected the proxy's certificate for this host.";
        case Reason::bypass_rule: return "Tunnelled without decryption by a configured rule.";
        case Reason::inspection: return "The content was blocked by the proxy's content inspection.";
        case Reason::malformed_http: return "The HTTP traffic in the tunnel is malformed, so it cannot be inspected.";
        case Reason::not_http:
            return "The tunnel carries a protocol other than HTTP/1.1, which content inspection does not allow.";
        case Reason::destination_not_allowed:
            return "The proxy does not connect to this address: it is in a range the proxy refuses (by default the "
                   "proxy's own host, link-local, multicast and broadcast addresses).";
        case Reason::client_connection_limit:
            return "Your address has as many connections open through the proxy as it may have at once; close some "
                   "and try again.";
        case Reason::malformed_websocket:
            return "The WebSocket traffic breaks the WebSocket protocol (RFC 6455), so it cannot be inspected.";
        case Reason::websocket_too_big:
            return "A WebSocket message is longer than the proxy inspects (inspection.websocket_max_message_bytes).";
        case Reason::malformed_http2:
            return "The HTTP/2 traffic breaks the HTTP/2 protocol (RFC 9113), so the connection was closed.";
        case Reason::http2_flood:
            return "The client abused HTTP/2 (a flood of resets, control frames or headers), so the connection was "
                   "closed.";
        case Reason::no_original_destination:
            return "The connection reached the proxy's transparent listener directly, so the proxy cannot tell which "
                   "server it was meant for.";
        case Reason::destination_loop: return "The connection was addressed to the proxy itself, which it never relays to.";
        case Reason::no_sni:
            return "The client did not name the server it wants (no SNI), so the proxy cannot intercept the connection.";
        case Reason::no_starttls:
            return "The mail server does not offer STARTTLS, and the proxy does not relay mail in clear text.";
        case Reason::malformed_smtp: return "A peer broke the SMTP protocol, so the connection was closed.";
    }
    return "Unknown error.";
}

}  // namespace proxy
