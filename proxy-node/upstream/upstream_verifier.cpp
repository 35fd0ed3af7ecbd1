#include "upstream/upstream_verifier.hpp"

#include "certs/names.hpp"
#include "ossl/pem.hpp"
#include "ossl/error.hpp"

#include <openssl/err.h>

#include <openssl/ocsp.h>

namespace proxy {

namespace {

// TLS 1.2 suites: ECDHE key exchange (forward secrecy) with AEAD only. TLS 1.3 suites are
// all AEAD with (EC)DHE and keep OpenSSL's defaults.
constexpr const char* kTls12Ciphers = "ECDHE+AESGCM:ECDHE+CHACHA20";
// Level 2: RSA/DSA/DH >= 2048 bits, ECC >= 224 bits, no SHA-1 signatures.
constexpr int kSecurityLevel = 2;
constexpr std::size_t kReadBufferBytes = 64 * 1024;
constexpr int kMinRsaBits = 2048;
constexpr int kMinEcBits = 224;
constexpr int kMaxChainDepth = 10;
// Resumption skips re-validating the certificate, so a ticket is not trusted for longer
// than this even if the server offers a longer lifetime.
constexpr std::chrono::minutes kMaxSessionAge{10};

int ex_index_sessions() {
    // Process-wide constant: the index under which the upstream context finds its session cache.
    static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return index;
}

int on_new_session(SSL* ssl, SSL_SESSION* session) {
    auto* seen = static_cast<UpstreamObservations*>(SSL_get_app_data(ssl));
    auto* cache = static_cast<UpstreamSessionCache*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ex_index_sessions()));
    // Only sessions of fully verified connections are kept (a failed handshake has none).
    if (seen == nullptr || cache == nullptr || seen->session_key.empty() || SSL_get_verify_result(ssl) != X509_V_OK ||
        seen->verify_error != 0)
        return 0;
    cache->put(seen->session_key, session);
    return 1;  // we keep the reference
}

// The proxy has no client certificate to give: it stops the handshake here (-1 suspends
// it) so that the connection can be tunnelled with the client's own handshake instead.
int on_client_certificate_request(SSL* ssl, X509**, EVP_PKEY**) {
    if (auto* seen = static_cast<UpstreamObservations*>(SSL_get_app_data(ssl))) seen->client_certificate_requested = true;
    return -1;
}

using OcspResponse = ossl::Owned<OCSP_RESPONSE, OCSP_RESPONSE_free>;
using OcspBasic = ossl::Owned<OCSP_BASICRESP, OCSP_BASICRESP_free>;
using OcspCertId = ossl::Owned<OCSP_CERTID, OCSP_CERTID_free>;

bool weak_digest(int md_nid) {
    return md_nid == NID_sha1 || md_nid == NID_md5 || md_nid == NID_md4 || md_nid == NID_md2 ||
           md_nid == NID_mdc2 || md_nid == NID_ripemd160;
}

// Belt and braces over the security level: refuses MD5/SHA-1 signatures on every
// certificate but a self-signed trust anchor (whose signature nobody relies on), and weak
// keys everywhere, whatever the library's defaults are.
int strict_verify(int ok, X509_STORE_CTX* store) {
    if (!ok) return 0;
    X509* cert = X509_STORE_CTX_get_current_cert(store);
    const int depth = X509_STORE_CTX_get_error_depth(store);
    STACK_OF(X509)* chain = X509_STORE_CTX_get0_chain(store);
    const bool anchor = chain != nullptr && depth == sk_X509_num(chain) - 1 &&
                        (X509_get_extension_flags(cert) & EXFLAG_SS) != 0;
    int md_nid = NID_undef;
    if (!anchor && X509_get_signature_info(cert, &md_nid, nullptr, nullptr, nullptr) == 1 && weak_digest(md_nid)) {
        X509_STORE_CTX_set_error(store, X509_V_ERR_CA_MD_TOO_WEAK);
        return 0;
    }
    if (EVP_PKEY* key = X509_get0_pubkey(cert)) {
        const int bits = EVP_PKEY_get_bits(key);
        const bool ec = EVP_PKEY_is_a(key, "EC") == 1;
        const bool rsa_like = EVP_PKEY_is_a(key, "RSA") == 1 || EVP_PKEY_is_a(key, "RSA-PSS") == 1 ||
                              EVP_PKEY_is_a(key, "DSA") == 1;
        if ((rsa_like && bits < kMinRsaBits) || (ec && bits < kMinEcBits)) {
            X509_STORE_CTX_set_error(store, depth == 0 ? X509_V_ERR_EE_KEY_TOO_SMALL : X509_V_ERR_CA_KEY_TOO_SMALL);
            return 0;
        }
    }
    return 1;
}

int verify_callback(int ok, X509_STORE_CTX* store) {
    auto* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
    auto* seen = ssl ? static_cast<UpstreamObservations*>(SSL_get_app_data(ssl)) : nullptr;
    if (seen != nullptr && seen->leaf_sha256.empty())
        if (X509* leaf = X509_STORE_CTX_get0_cert(store)) seen->leaf_sha256 = ossl::fingerprint_sha256(*leaf);
    if (strict_verify(ok, store) == 1) return 1;
    if (seen == nullptr || !seen->record_only) return 0;
    if (seen->verify_error == 0) seen->verify_error = X509_STORE_CTX_get_error(store);
    return 1;
}

Verdict check_ocsp_staple(SSL* ssl) {
    const unsigned char* der = nullptr;
    long len = SSL_get_tlsext_status_ocsp_resp(ssl, &der);
    if (len <= 0 || der == nullptr) return {};
    OcspResponse resp(d2i_OCSP_RESPONSE(nullptr, &der, len));
    if (!resp || OCSP_response_status(resp.get()) != OCSP_RESPONSE_STATUS_SUCCESSFUL) return {};
    OcspBasic basic(OCSP_response_get1_basic(resp.get()));
    STACK_OF(X509)* verified = SSL_get0_verified_chain(ssl);
    if (!basic || verified == nullptr || sk_X509_num(verified) < 2) return {};
    // A staple that does not verify says nothing either way: it is ignored, as browsers do.
    SSL_CTX* ctx = SSL_get_SSL_CTX(ssl);
    if (OCSP_basic_verify(basic.get(), verified, SSL_CTX_get_cert_store(ctx), 0) != 1) {
        ERR_clear_error();
        return {};
    }
    OcspCertId id(OCSP_cert_to_id(nullptr, sk_X509_value(verified, 0), sk_X509_value(verified, 1)));
    int status = -1, reason = -1;
    ASN1_GENERALIZEDTIME *revoked_at = nullptr, *this_update = nullptr, *next_update = nullptr;
    if (id && OCSP_resp_find_status(basic.get(), id.get(), &status, &reason, &revoked_at, &this_update, &next_update) == 1 &&
        status == V_OCSP_CERTSTATUS_REVOKED)
        return {Reason::revoked, "stapled OCSP response: revoked"};
    ERR_clear_error();
    return {};
}

}  // namespace

UpstreamSessionCache::~UpstreamSessionCache() {
    for (auto& [k, e] : entries_) SSL_SESSION_free(e.session);
}

void UpstreamSessionCache::put(const std::string& key, SSL_SESSION* session) {
    if (capacity_ == 0) {
        SSL_SESSION_free(session);
        return;
    }
    std::lock_guard lock(mu_);
    if (SSL_SESSION_get_protocol_version(session) < TLS1_3_VERSION) {
        // A TLS 1.2 session replaces the one kept for its key (a server that renews its
        // ticket on resumption must not fill the cache with copies).
        auto [first, last] = entries_.equal_range(key);
        for (auto it = first; it != last;) {
            if (it->second.session == session) {  // the same session handed over again
                SSL_SESSION_free(session);
                return;
            }
            if (SSL_SESSION_get_protocol_version(it->second.session) < TLS1_3_VERSION) {
                SSL_SESSION_free(it->second.session);
                it = entries_.erase(it);
            } else {
                ++it;
            }
        }
    }
    while (entries_.size() >= capacity_ && !order_.empty()) {
        auto it = entries_.find(order_.front());
        if (it != entries_.end()) {
            SSL_SESSION_free(it->second.session);
            entries_.erase(it);
        }
        order_.pop_front();
    }
    entries_.emplace(key, Entry{session, std::chrono::steady_clock::now()});
    order_.push_back(key);
    // take() leaves its key in order_; drop such stale keys now and then so that order_
    // stays bounded by the entries it describes (amortised O(1) per put).
    if (order_.size() > 2 * capacity_ + 64) {
        std::unordered_map<std::string, std::size_t> remaining;
        for (const auto& [k, e] : entries_) ++remaining[k];
        std::deque<std::string> kept;
        for (auto it = order_.rbegin(); it != order_.rend(); ++it) {
            auto r = remaining.find(*it);
            if (r == remaining.end() || r->second == 0) continue;
            --r->second;
            kept.push_front(std::move(*it));
        }
        order_.swap(kept);
    }
}

std::size_t UpstreamSessionCache::bookkeeping_size() {
    std::lock_guard lock(mu_);
    return order_.size();
}

SSL_SESSION* UpstreamSessionCache::take(const std::string& key) {
    std::lock_guard lock(mu_);
    for (;;) {
        auto it = entries_.find(key);
        if (it == entries_.end()) return nullptr;
        Entry e = it->second;
        const bool usable =
            std::chrono::steady_clock::now() - e.stored < kMaxSessionAge && SSL_SESSION_is_resumable(e.session) == 1;
        // TLS 1.2: a session (its ticket or ID) may be resumed again and again while it is
        // valid (RFC 5077 leaves reuse to the server; browsers reuse, and a resumed TLS 1.2
        // handshake usually brings no new ticket). TLS 1.3 tickets are used once (RFC 8446 C.4).
        if (usable && SSL_SESSION_get_protocol_version(e.session) < TLS1_3_VERSION) {
            SSL_SESSION_up_ref(e.session);
            return e.session;
        }
        entries_.erase(it);
        if (usable) return e.session;
        SSL_SESSION_free(e.session);
    }
}

Reason reason_for_verify_error(long e) {
    switch (e) {
        case X509_V_ERR_CERT_HAS_EXPIRED:
        case X509_V_ERR_CRL_HAS_EXPIRED: return Reason::expired;
        case X509_V_ERR_CERT_NOT_YET_VALID: return Reason::not_yet_valid;
        case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
        case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN: return Reason::self_signed;
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
        case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        case X509_V_ERR_CERT_UNTRUSTED: return Reason::unknown_issuer;
        case X509_V_ERR_HOSTNAME_MISMATCH:
        case X509_V_ERR_IP_ADDRESS_MISMATCH: return Reason::hostname_mismatch;
        case X509_V_ERR_CA_MD_TOO_WEAK: return Reason::weak_signature;
        case X509_V_ERR_EE_KEY_TOO_SMALL:
        case X509_V_ERR_CA_KEY_TOO_SMALL: return Reason::weak_key;
        case X509_V_ERR_CERT_REVOKED: return Reason::revoked;
        default: return Reason::bad_certificate;
    }
}

UpstreamVerifier::UpstreamVerifier(const UpstreamSection& config)
    : sessions_(std::make_unique<UpstreamSessionCache>(config.session_cache_entries)),
      ctx_(SSL_CTX_new(TLS_client_method())) {
    if (!ctx_) throw ossl::Error("creating the upstream TLS context");
    SSL_CTX* c = ctx_.get();
    SSL_CTX_set_ex_data(c, ex_index_sessions(), sessions_.get());
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(c, on_new_session);
    SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
    SSL_CTX_set_security_level(c, kSecurityLevel);
    SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    // Never talk to servers without RFC 5746 secure renegotiation, never renegotiate unsafely.
    SSL_CTX_clear_options(c, SSL_OP_LEGACY_SERVER_CONNECT | SSL_OP_ALLOW_UNSAFE_LEGACY_RENEGOTIATION);
    if (SSL_CTX_set_cipher_list(c, kTls12Ciphers) != 1) throw ossl::Error("setting the upstream cipher list");
    // All TLS 1.3 suites, offered in the order browsers use (AES-128-GCM first).
    if (SSL_CTX_set_ciphersuites(c, "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384") != 1)
        throw ossl::Error("setting the upstream TLS 1.3 suites");
    if (config.system_trust && SSL_CTX_set_default_verify_paths(c) != 1)
        throw ossl::Error("loading the system trust store");
    if (!config.extra_ca.empty() && SSL_CTX_load_verify_locations(c, config.extra_ca.c_str(), nullptr) != 1)
        throw ossl::Error("loading upstream.extra_ca " + config.extra_ca.string());
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, verify_callback);
    SSL_CTX_set_verify_depth(c, kMaxChainDepth);
    SSL_CTX_set_client_cert_cb(c, on_client_certificate_request);
    SSL_CTX_set_read_ahead(c, 1);
    // Several records per recv() on bulk transfers.
    SSL_CTX_set_default_read_buffer_len(c, kReadBufferBytes);
    ERR_clear_error();
}

ossl::Ssl UpstreamVerifier::new_session(const std::string& name, const std::string& endpoint,
                                        const std::vector<std::uint8_t>& alpn_wire, UpstreamObservations& seen) const {
    ossl::Ssl ssl(SSL_new(ctx_.get()));
    if (!ssl) throw ossl::Error("creating an upstream TLS session");
    SSL_set_app_data(ssl.get(), &seen);
    seen.session_key = name + '|' + endpoint + '|' + std::string(alpn_wire.begin(), alpn_wire.end());
    if (SSL_SESSION* resumable = sessions_->take(seen.session_key)) {
        SSL_set_session(ssl.get(), resumable);
        SSL_SESSION_free(resumable);  // SSL_set_session took its own reference
    }
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl.get());
    if (is_ip_literal(name)) {
        if (X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str()) != 1) throw ossl::Error("setting the IP to verify");
    } else {
        // As Chromium checks names: subjectAltName dNSName entries only, the subject CN is never
        // consulted (OpenSSL falls back to it when a certificate has no DNS names); no partial
        // wildcards (f*.example.com). An IP literal (above) matches only iPAddress entries.
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS | X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
        if (X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size()) != 1)
            throw ossl::Error("setting the host name to verify");
        if (SSL_set_tlsext_host_name(ssl.get(), name.c_str()) != 1) throw ossl::Error("setting SNI");
    }
    if (!alpn_wire.empty() &&
        SSL_set_alpn_protos(ssl.get(), alpn_wire.data(), static_cast<unsigned>(alpn_wire.size())) != 0)
        throw ossl::Error("setting ALPN");
    SSL_set_tlsext_status_type(ssl.get(), TLSEXT_STATUSTYPE_ocsp);
    SSL_set_connect_state(ssl.get());
    return ssl;
}

Verdict UpstreamVerifier::classify_failure(SSL* ssl, const tls::TlsFailure& failure) const {
    const long verify = SSL_get_verify_result(ssl);
    if (verify != X509_V_OK) {
        return {reason_for_verify_error(verify), X509_verify_cert_error_string(verify)};
    }
    if (failure.text == "timed out") return {Reason::timeout, "TLS handshake timed out"};
    switch (ERR_GET_REASON(failure.error_code)) {
        case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
        case SSL_R_UNSUPPORTED_PROTOCOL:
        case SSL_R_NO_PROTOCOLS_AVAILABLE:
        case SSL_R_WRONG_SSL_VERSION:
        case SSL_R_VERSION_TOO_LOW:
            return {Reason::protocol_version, failure.text};
        case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
        case SSL_R_NO_SHARED_CIPHER:
        case SSL_R_WRONG_CIPHER_RETURNED:
        case SSL_R_TLSV1_ALERT_INSUFFICIENT_SECURITY:
            return {Reason::insecure_cipher, failure.text};
        case SSL_R_UNSAFE_LEGACY_RENEGOTIATION_DISABLED:
            return {Reason::insecure_renegotiation, failure.text};
        default:
            return {Reason::handshake_failed, failure.text};
    }
}

Verdict UpstreamVerifier::check_established(SSL* ssl) const {
    const int version = SSL_version(ssl);
    if (version < TLS1_2_VERSION) return {Reason::protocol_version, SSL_get_version(ssl)};
    const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl);
    if (cipher == nullptr || SSL_CIPHER_is_aead(cipher) != 1 ||
        (version == TLS1_2_VERSION && SSL_CIPHER_get_kx_nid(cipher) != NID_kx_ecdhe))
        return {Reason::insecure_cipher, cipher ? SSL_CIPHER_get_name(cipher) : "no cipher"};
    if (version == TLS1_2_VERSION && SSL_get_secure_renegotiation_support(ssl) != 1)
        return {Reason::insecure_renegotiation, "server lacks RFC 5746 secure renegotiation"};
    if (SSL_get_current_compression(ssl) != nullptr) return {Reason::handshake_failed, "TLS compression negotiated"};
    return check_ocsp_staple(ssl);
}

}  // namespace proxy
