#include "tls/server_context.hpp"

#include "ossl/error.hpp"

#include <cstring>

namespace proxy::tls {

namespace {

// Forward secrecy and AEAD only, as on the upstream side: the client never gets less
// than the proxy demands of servers.
constexpr const char* kTls12Ciphers = "ECDHE+AESGCM:ECDHE+CHACHA20";
constexpr int kSecurityLevel = 2;
constexpr std::size_t kReadBufferBytes = 64 * 1024;

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

void attach_choices(SSL& ssl, ServerChoices& choices) { SSL_set_app_data(&ssl, &choices); }

}  // namespace proxy::tls
