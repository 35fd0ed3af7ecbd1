#pragma once
// Validating upstream servers as a browser would: the system trust store plus the
// configured extra anchors, host name or IP check, validity dates, TLS 1.2/1.3 only,
// ECDHE + AEAD suites only, no SHA-1/MD5 signatures, no RSA keys below 2048 bits, no
// compression, no insecure renegotiation, and a stapled OCSP "revoked" is refused.
// Failures are classified into stable reason codes.

#include "config/node_config.hpp"
#include "ossl/handles.hpp"
#include "tls/tls_stream.hpp"
#include "upstream/reason.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace proxy {

class UpstreamVerifier {
public:
    explicit UpstreamVerifier(const UpstreamSection& config);

    // A client-mode SSL that will verify `name` (a DNS name, sent as SNI, or an IP literal)
    // and offer `alpn_wire` (may be empty).
    ossl::Ssl new_session(const std::string& name, const std::vector<std::uint8_t>& alpn_wire) const;

    // Why a handshake failed.
    Verdict classify_failure(SSL* ssl, const tls::TlsFailure& failure) const;
    // Checks that survive a successful handshake: protocol, suite, renegotiation, OCSP staple.
    Verdict check_established(SSL* ssl) const;

    SSL_CTX* context() const { return ctx_.get(); }

private:
    ossl::SslCtx ctx_;
};

// Maps an X509_V_ERR_* to a reason.
Reason reason_for_verify_error(long verify_error);

}  // namespace proxy
