#include "support/client_hello.hpp"

#include "ossl/handles.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <stdexcept>

namespace testing_support {

std::vector<std::uint8_t> openssl_client_hello(const HelloSpec& spec) {
    ossl::SslCtx ctx(SSL_CTX_new(TLS_client_method()));
    if (!ctx) throw std::runtime_error("SSL_CTX_new failed");
    if (!spec.tls12_ciphers.empty()) {
        SSL_CTX_set_security_level(ctx.get(), 0);
        SSL_CTX_set_cipher_list(ctx.get(), spec.tls12_ciphers.c_str());
    }
    if (spec.min_version != 0) SSL_CTX_set_min_proto_version(ctx.get(), spec.min_version);
    if (spec.max_version != 0) SSL_CTX_set_max_proto_version(ctx.get(), spec.max_version);
    ossl::Ssl ssl(SSL_new(ctx.get()));
    if (!ssl) throw std::runtime_error("SSL_new failed");
    BIO* rbio = BIO_new(BIO_s_mem());
    BIO* wbio = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl.get(), rbio, wbio);  // the SSL owns both from here
    if (!spec.sni.empty()) SSL_set_tlsext_host_name(ssl.get(), spec.sni.c_str());
    if (!spec.alpn.empty()) SSL_set_alpn_protos(ssl.get(), spec.alpn.data(), static_cast<unsigned>(spec.alpn.size()));
    SSL_connect(ssl.get());  // writes the ClientHello, then wants to read
    char* data = nullptr;
    const long len = BIO_get_mem_data(wbio, &data);
    std::vector<std::uint8_t> out(data, data + len);
    ERR_clear_error();
    return out;
}

}  // namespace testing_support
