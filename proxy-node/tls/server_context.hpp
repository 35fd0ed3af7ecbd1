#pragma once
// The client-facing TLS context for one forged leaf: made once per certificate and reused
// for every connection it serves (OpenSSL 3.0 context creation is expensive).

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

// TLS 1.2/1.3, ECDHE + AEAD suites only, no compression or renegotiation, session
// tickets on; presents `leaf` followed by `chain`.
ossl::SslCtx make_server_context(X509& leaf, const std::vector<ossl::X509Ptr>& chain, EVP_PKEY& key);

// Whether the client-facing context can complete a handshake with a client that sent
// `hello` (a version and a suite in common); if not, `why` says what the client offered.
enum class Terminable { yes, no_version, no_suite };
Terminable can_terminate(const ClientHello& hello, std::string& why);

// Points the shared context at this connection's choices; `choices` must outlive the handshake.
void attach_choices(SSL& ssl, ServerChoices& choices);

}  // namespace proxy::tls
