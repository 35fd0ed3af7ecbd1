#pragma once
// Why a connection was refused or failed: stable codes for logs, metrics and error pages
// (an operator may alert on them, so a code is never renamed or reused).

#include <string>
#include <string_view>

namespace proxy {

enum class Reason {
    none,
    // The upstream certificate.
    expired,
    not_yet_valid,
    self_signed,
    unknown_issuer,
    hostname_mismatch,
    weak_signature,  // MD5/SHA-1 signed
    weak_key,        // RSA/DSA/DH below 2048 bits, EC below 224
    revoked,         // a stapled OCSP response says so
    bad_certificate, // any other verification failure
    // The upstream TLS parameters.
    protocol_version,  // TLS below 1.2 only
    insecure_cipher,   // no forward-secret AEAD suite in common
    insecure_renegotiation,
    handshake_failed,
    // Reaching the upstream.
    dns_failed,
    connect_failed,
    timeout,
    // The client or this proxy.
    malformed_request,
    method_not_allowed,
    request_too_large,
    not_tls,           // a CONNECT tunnel that does not carry TLS
    client_handshake_failed,
    ca_unavailable,    // no certificate for a new name: the ca-service cannot be reached
    certificate_refused,  // the ca-service refused the name (policy)
    overloaded,
    shutting_down,
    // Client access control and TLS the proxy cannot terminate.
    client_not_allowed,      // the client's address is not in access.allowed_clients
    unsupported_client_tls,  // the client offers only TLS versions or suites the proxy does not support
    client_certificate_required,  // the server asks for a client certificate; bypass.client_certificate = "refuse"
    // Why a tunnel was passed through without decrypting (decision "bypassed").
    bypass_pattern,             // "pattern": a configured host pattern or list
    bypass_client_certificate,  // "client_certificate": the server asks for a client certificate
    bypass_learned,             // "learned": a client rejected the forged certificate earlier
    bypass_rule,                // "rule": unsupported TLS or non-TLS bytes, tunnelled by configuration
    // Inspection of the decrypted HTTP/1.1 traffic (inspect/).
    inspection,      // a rule blocked a request or response body
    malformed_http,  // the decrypted stream is not well-formed HTTP/1.1
    not_http,        // the tunnel carries something other than HTTP/1.1 (or upgrades away from it)
    // Destination access control.
    destination_not_allowed,  // every address of the destination is in access.denied_destinations
    // Fairness between clients.
    client_connection_limit,  // the client's address holds limits.max_connections_per_client already
    // WebSocket under inspection.
    malformed_websocket,    // a frame breaks RFC 6455 (closed with 1002)
    websocket_too_big,      // a message longer than inspection.websocket_max_message_bytes (closed with 1009)
    // HTTP/2 under inspection (h2/).
    malformed_http2,  // a peer broke RFC 9113 (the connection ends with GOAWAY)
    http2_flood,      // a client abused HTTP/2: rapid reset, CONTINUATION / PING / SETTINGS floods, an HPACK bomb
    // Transparent interception (listen.transparent).
    no_original_destination,  // the node cannot tell where the connection was going (not steered to it)
    destination_loop,         // the original destination is the node itself
    no_sni,                   // a ClientHello without SNI, refused by transparent.no_sni
    // E-mail (mail/).
    no_starttls,     // the mail server offers no STARTTLS; refused by smtp.no_starttls (421 to the client)
    malformed_smtp,  // a peer broke SMTP (a line too long, a reply that is not one, garbage)
};
inline constexpr Reason kLastReason = Reason::malformed_smtp;
inline bool is_bypass(Reason r) { return r >= Reason::bypass_pattern && r <= Reason::bypass_rule; }

std::string_view code(Reason r);
// One sentence a person can act on, for the error page.
std::string_view describe(Reason r);

struct Verdict {
    Reason reason = Reason::none;
    std::string detail;  // specifics (OpenSSL's words, the names involved)
    bool ok() const { return reason == Reason::none; }
};

}  // namespace proxy
