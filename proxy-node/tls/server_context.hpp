#pragma once
// The client-facing TLS context: one for the whole node, made at start. Each connection's
// session is pointed at its forged leaf, chain and key (a few microseconds), so a new name
// costs no context creation (about 250 us in OpenSSL 3.0) and cached names no memory per
// context.

#include "ossl/handles.hpp"
#include "tls/client_hello.hpp"

#include <string>
#include <vector>

namespace proxy::tls {

// Per-connection choices the shared context consults, attached to the SSL as app data.
struct ServerChoices {
    // The protocol the upstream selected; empty: the client is told none (RFC 7301 allows
    // the server to ignore ALPN), so it is never told a protocol the upstream did not pick.
    std::string alpn;
};

// TLS 1.2/1.3, ECDHE + AEAD suites only, no compression or renegotiation, stateless session
// tickets (a client resumes only for a name its original certificate covered, RFC 8446
// 4.6.1, and every upstream connection is validated afresh whatever the client resumes).
class ClientFacingContext {
public:
    ClientFacingContext();

    // A server-side session presenting `leaf`, then `chain`, with `key`; throws ossl::Error.
    ossl::Ssl new_session(X509& leaf, STACK_OF(X509) & chain, EVP_PKEY& key) const;

private:
    ossl::SslCtx ctx_;
};

// Whether the client-facing context can complete a handshake with a client that sent
// `hello` (a version and a suite in common); if not, `why` says what the client offered.
enum class Terminable { yes, no_version, no_suite };
Terminable can_terminate(const ClientHello& hello, std::string& why);

// Points the shared context at this connection's choices; `choices` must outlive the handshake.
void attach_choices(SSL& ssl, ServerChoices& choices);

}  // namespace proxy::tls
