#include "tls/server_context.hpp"

#include "ossl/error.hpp"

#include <algorithm>
#include <cstring>
#include <span>

namespace proxy::tls {

namespace {

// Forward secrecy and AEAD only, as on the upstream side: the client never gets less
// than the proxy demands of servers.
constexpr const char* kTls12Ciphers = "ECDHE+AESGCM:ECDHE+CHACHA20";
// All three TLS 1.3 suites, in the order browsers prefer them (Chrome, Firefox): AES-128-GCM
// first matches the ~128-bit strength of the X25519/P-256 key exchange, and its SHA-256 key
// schedule costs about half of AES-256's SHA-384 one (two TLS 1.3 handshakes per connection).
constexpr const char* kTls13SuiteOrder = "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384";
constexpr int kSecurityLevel = 2;
constexpr std::size_t kReadBufferBytes = 64 * 1024;
constexpr std::uint16_t kTls12 = 0x0303;
constexpr std::uint16_t kTls13 = 0x0304;
// TLS 1.3 suites OpenSSL serves by default (AES-GCM, ChaCha20).
constexpr std::uint16_t kTls13Suites[] = {0x1301, 0x1302, 0x1303};
// kTls12Ciphers with the leaf's EC key: ECDHE-ECDSA with AES-GCM or ChaCha20-Poly1305.
constexpr std::uint16_t kTls12Suites[] = {0xC02B, 0xC02C, 0xCCA9};

bool offers_any(const std::vector<std::uint16_t>& offered, std::span<const std::uint16_t> wanted) {
    for (auto s : offered)
        if (std::find(wanted.begin(), wanted.end(), s) != wanted.end()) return true;
    return false;
}

std::string version_name(std::uint16_t v) {
    switch (v) {
        case 0x0300: return "SSL 3.0";
        case 0x0301: return "TLS 1.0";
        case 0x0302: return "TLS 1.1";
        case 0x0303: return "TLS 1.2";
        case 0x0304: return "TLS 1.3";
        default: return "0x" + std::string(1, "0123456789abcdef"[v >> 12]) + "0123456789abcdef"[(v >> 8) & 15] +
                        "0123456789abcdef"[(v >> 4) & 15] + "0123456789abcdef"[v & 15];
    }
}

int select_alpn(SSL* ssl, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void*) {
    const auto* choices = static_cast<const ServerChoices*>(SSL_get_app_data(ssl));
    if (choices == nullptr || choices->alpn.empty()) return SSL_TLSEXT_ERR_NOACK;
    // Point into the client's own list: the selected protocol must be one it offered.
    for (unsigned int i = 0; i < inlen;) {
        unsigned int len = in[i];
        if (i + 1 + len > inlen) break;
        if (len == choices->alpn.size() && std::memcmp(in + i + 1, choices->alpn.data(), len) == 0) {
            *out = in + i + 1;
            *outlen = static_cast<unsigned char>(len);
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + len;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

}  // namespace

ClientFacingContext::ClientFacingContext() : ctx_(SSL_CTX_new(TLS_server_method())) {
    if (!ctx_) throw ossl::Error("creating the client-facing TLS context");
    SSL_CTX* c = ctx_.get();
    SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
    SSL_CTX_set_security_level(c, kSecurityLevel);
    SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_clear_options(c, SSL_OP_LEGACY_SERVER_CONNECT | SSL_OP_ALLOW_UNSAFE_LEGACY_RENEGOTIATION);
    if (SSL_CTX_set_cipher_list(c, kTls12Ciphers) != 1) throw ossl::Error("setting the client-facing cipher list");
    if (SSL_CTX_set_ciphersuites(c, kTls13SuiteOrder) != 1) throw ossl::Error("setting the client-facing TLS 1.3 suites");
    SSL_CTX_set_alpn_select_cb(c, select_alpn, nullptr);
    SSL_CTX_set_read_ahead(c, 1);
    // Several records per recv() on bulk transfers.
    SSL_CTX_set_default_read_buffer_len(c, kReadBufferBytes);
    // Stateless tickets keep returning clients cheap without server-side session state.
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(c, 1);
}

ossl::Ssl ClientFacingContext::new_session(X509& leaf, STACK_OF(X509) & chain, EVP_PKEY& key) const {
    ossl::Ssl ssl(SSL_new(ctx_.get()));
    if (!ssl) throw ossl::Error("creating a client-facing TLS session");
    // Checks that the key matches the certificate, and takes its own references.
    if (SSL_use_cert_and_key(ssl.get(), &leaf, &key, &chain, 1) != 1)
        throw ossl::Error("presenting the forged leaf (certificate, key and chain)");
    SSL_set_accept_state(ssl.get());
    return ssl;
}

Terminable can_terminate(const ClientHello& hello, std::string& why) {
    const auto& sv = hello.supported_versions;
    // supported_versions, when present, replaces legacy_version (RFC 8446 4.2.1).
    const bool tls13 = std::find(sv.begin(), sv.end(), kTls13) != sv.end();
    const bool tls12 = sv.empty() ? hello.legacy_version >= kTls12 : std::find(sv.begin(), sv.end(), kTls12) != sv.end();
    if (tls13 && offers_any(hello.cipher_suites, kTls13Suites)) return Terminable::yes;
    if (tls12 && offers_any(hello.cipher_suites, kTls12Suites)) return Terminable::yes;
    if (!tls12 && !tls13) {
        std::uint16_t best = hello.legacy_version;
        for (auto v : sv)
            if ((v & 0xff00) == 0x0300 && v > best) best = v;  // ignores GREASE values
        why = "the client offers at most " + version_name(best) + "; TLS 1.2 or 1.3 is required";
        return Terminable::no_version;
    }
        why = "no cipher suite in common: the client offers " + std::to_string(hello.cipher_suites.size()) +
              " suites, none of them TLS 1.3 AEAD or TLS 1.2 ECDHE-ECDSA with AES-GCM/ChaCha20";
    return Terminable::no_suite;
}

void attach_choices(SSL& ssl, ServerChoices& choices) { SSL_set_app_data(&ssl, &choices); }

}  // namespace proxy::tls
