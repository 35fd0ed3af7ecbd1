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

ossl::SslCtx make_server_context(X509& leaf, const std::vector<ossl::X509Ptr>& chain, EVP_PKEY& key) {
    ossl::SslCtx ctx(SSL_CTX_new(TLS_server_method()));
    if (!ctx) throw ossl::Error("creating the client-facing TLS context");
    SSL_CTX* c = ctx.get();
    SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
    SSL_CTX_set_security_level(c, kSecurityLevel);
    SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_clear_options(c, SSL_OP_LEGACY_SERVER_CONNECT | SSL_OP_ALLOW_UNSAFE_LEGACY_RENEGOTIATION);
    if (SSL_CTX_set_cipher_list(c, kTls12Ciphers) != 1) throw ossl::Error("setting the client-facing cipher list");
    if (SSL_CTX_use_certificate(c, &leaf) != 1) throw ossl::Error("loading the forged leaf certificate");
    for (const auto& ca : chain)
        if (SSL_CTX_add1_chain_cert(c, ca.get()) != 1) throw ossl::Error("adding the issuing CA to the chain");
    if (SSL_CTX_use_PrivateKey(c, &key) != 1) throw ossl::Error("loading the leaf private key");
    if (SSL_CTX_check_private_key(c) != 1) throw ossl::Error("the leaf certificate does not match the leaf key");
    SSL_CTX_set_alpn_select_cb(c, select_alpn, nullptr);
    SSL_CTX_set_read_ahead(c, 1);
    // Several records per recv() on bulk transfers.
    SSL_CTX_set_default_read_buffer_len(c, kReadBufferBytes);
    // Stateless tickets keep returning clients cheap without server-side session state.
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(c, 1);
    return ctx;
}

void attach_choices(SSL& ssl, ServerChoices& choices) { SSL_set_app_data(&ssl, &choices); }

}  // namespace proxy::tls
