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

#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <unordered_map>
#include <memory>
#include <string>
#include <vector>

namespace proxy {

// What the verifier saw of the upstream, filled in during the handshake even when it fails
// (a refused certificate's fingerprint belongs in the log).
struct UpstreamObservations {
    std::string leaf_sha256;
    std::string session_key;  // where a ticket from this server is kept for resumption
    // The server sent a CertificateRequest (TLS 1.2 or 1.3, during the handshake): the
    // handshake is suspended there (SSL_ERROR_WANT_X509_LOOKUP), never completed without one.
    bool client_certificate_requested = false;
    // Set before the handshake for opportunistic TLS (mail servers, smtp.tls): a certificate
    // that fails validation does not stop the handshake; the first failure is kept in
    // verify_error (an X509_V_ERR_*) for the log, and no session of it is kept for resumption.
    bool record_only = false;
    int verify_error = 0;
};

// TLS sessions (tickets) from upstream servers, so that the next connection to the same
// server name and address resumes instead of repeating the full handshake, as browsers do.
// A TLS 1.3 ticket is used once (RFC 8446 C.4); a TLS 1.2 session is reused while it is
// valid; either is kept at most kMaxSessionAge.
class UpstreamSessionCache {
public:
    explicit UpstreamSessionCache(std::size_t capacity) : capacity_(capacity) {}
    ~UpstreamSessionCache();
    void put(const std::string& key, SSL_SESSION* session);  // takes a reference
    SSL_SESSION* take(const std::string& key);               // caller owns the reference; null if none
    std::size_t bookkeeping_size();                          // insertion-order records kept (for tests)

private:
    struct Entry {
        SSL_SESSION* session;
        std::chrono::steady_clock::time_point stored;
    };
    std::size_t capacity_;
    std::mutex mu_;
    std::unordered_multimap<std::string, Entry> entries_;
    std::deque<std::string> order_;  // insertion order, for bounding
};

class UpstreamVerifier {
public:
    explicit UpstreamVerifier(const UpstreamSection& config);

    // A client-mode SSL that will verify `name` (a DNS name, sent as SNI, or an IP literal)
    // and offer `alpn_wire` (may be empty); `seen` must outlive the handshake.
    // `endpoint` (address:port) keys session resumption together with the name and ALPN.
    ossl::Ssl new_session(const std::string& name, const std::string& endpoint,
                          const std::vector<std::uint8_t>& alpn_wire, UpstreamObservations& seen) const;

    // Why a handshake failed.
    Verdict classify_failure(SSL* ssl, const tls::TlsFailure& failure) const;
    // Checks that survive a successful handshake: protocol, suite, renegotiation, OCSP staple.
    Verdict check_established(SSL* ssl) const;

    SSL_CTX* context() const { return ctx_.get(); }

private:
    std::unique_ptr<UpstreamSessionCache> sessions_;
    ossl::SslCtx ctx_;
};

// Maps an X509_V_ERR_* to a reason.
Reason reason_for_verify_error(long verify_error);

}  // namespace proxy
