#pragma once
// The client-facing TLS context for one forged leaf: made once per certificate and reused
// for every connection it serves (OpenSSL 3.0 context creation is expensive).

#include "ossl/handles.hpp"

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

// Points the shared context at this connection's choices; `choices` must outlive the handshake.
void attach_choices(SSL& ssl, ServerChoices& choices);

}  // namespace proxy::tls
