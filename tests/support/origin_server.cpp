#include "support/origin_server.hpp"

#include "ossl/encoding.hpp"
#include "ossl/error.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/read_until.hpp>
#include <asio/redirect_error.hpp>
#include <asio/ssl.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <openssl/evp.h>

#include <array>
#include <cstring>
#include <fstream>
#include <thread>
#include <vector>

namespace testing_support {

namespace {

using asio::ip::tcp;
constexpr std::size_t kMaxHead = 16 * 1024;
// A multiple of the pattern period, so that every chunk starts at pattern offset 0.
constexpr std::size_t kChunk = 251 * 256;

int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen,
                void* arg) {
    const auto* want = static_cast<const std::string*>(arg);
    for (unsigned i = 0; i < inlen && i + 1U + in[i] <= inlen; i += 1U + in[i]) {
        if (in[i] == want->size() && std::memcmp(in + i + 1, want->data(), want->size()) == 0) {
            *out = in + i + 1;
            *outlen = in[i];
            return SSL_TLSEXT_ERR_OK;
        }
    }
    return SSL_TLSEXT_ERR_NOACK;
}

ossl::SslCtx make_ctx(const OriginCert& c, const std::string& alpn) {
    ossl::SslCtx ctx(SSL_CTX_new(TLS_server_method()));
    SSL_CTX_use_certificate(ctx.get(), c.cert.get());
    for (const auto& ca : c.chain) SSL_CTX_add1_chain_cert(ctx.get(), ca.get());
    SSL_CTX_use_PrivateKey(ctx.get(), c.key.get());
    // Test certificates include deliberately weak ones (RSA-1024, SHA-1): the origin must
    // be able to present them so the proxy can be seen refusing them.
    SSL_CTX_set_security_level(ctx.get(), 0);
    if (!alpn.empty()) SSL_CTX_set_alpn_select_cb(ctx.get(), select_alpn, const_cast<std::string*>(&alpn));
    return ctx;
}

}  // namespace

void write_origin_pattern(const std::filesystem::path& file, std::uint64_t n) {
    std::ofstream out(file, std::ios::binary);
    std::vector<char> chunk(kChunk);
    for (std::size_t i = 0; i < kChunk; ++i) chunk[i] = static_cast<char>(origin_pattern_byte(i));
    while (n > 0) {
        auto k = static_cast<std::size_t>(std::min<std::uint64_t>(n, kChunk));
        out.write(chunk.data(), static_cast<std::streamsize>(k));
        n -= k;
    }
}

struct OriginServer::Impl {
    OriginOptions options;
    asio::io_context io;
    tcp::acceptor acceptor{io};
    std::map<std::string, ossl::SslCtx> by_name;
    asio::ssl::context default_ctx{asio::ssl::context::tls_server};
    std::vector<std::thread> threads;
    std::vector<char> chunk = std::vector<char>(kChunk);

    static int on_sni(SSL* ssl, int*, void* arg) {
        auto* self = static_cast<Impl*>(arg);
        const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
        if (name != nullptr) {
            auto it = self->by_name.find(name);
            if (it != self->by_name.end()) SSL_set_SSL_CTX(ssl, it->second.get());
        }
        return SSL_TLSEXT_ERR_OK;
    }

    asio::awaitable<void> serve(tcp::socket socket) {
        asio::ssl::stream<tcp::socket> stream(std::move(socket), default_ctx);
        asio::error_code ec;
        co_await stream.async_handshake(asio::ssl::stream_base::server, asio::redirect_error(asio::use_awaitable, ec));
        if (ec) co_return;
        const char* sni = SSL_get_servername(stream.native_handle(), TLSEXT_NAMETYPE_host_name);
        const std::string host = sni ? sni : "(no SNI)";
        std::string buffer;
        for (;;) {
            std::size_t n = co_await asio::async_read_until(stream, asio::dynamic_buffer(buffer, kMaxHead), "\r\n\r\n",
                                                            asio::redirect_error(asio::use_awaitable, ec));
            if (ec) break;
            std::string head = buffer.substr(0, n);
            buffer.erase(0, n);
            std::string line = head.substr(0, head.find("\r\n"));
            std::string method = line.substr(0, line.find(' '));
            std::string path = line.substr(method.size() + 1, line.rfind(' ') - method.size() - 1);
            std::uint64_t content_length = 0;
            std::string lower = head;
            for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            if (auto p = lower.find("\r\ncontent-length:"); p != std::string::npos)
                content_length = std::stoull(lower.substr(p + 17));
            const bool close = lower.find("\r\nconnection: close") != std::string::npos;
            std::string response;
            if (method == "POST" && path == "/upload") {
                ossl::MdCtx md(EVP_MD_CTX_new());
                EVP_DigestInit_ex(md.get(), EVP_sha256(), nullptr);
                std::uint64_t got = std::min<std::uint64_t>(buffer.size(), content_length);
                EVP_DigestUpdate(md.get(), buffer.data(), got);
                buffer.erase(0, got);
                std::vector<char> buf(kChunk);
                while (got < content_length && !ec) {
                    std::size_t k = co_await stream.async_read_some(
                        asio::buffer(buf.data(), std::min<std::uint64_t>(buf.size(), content_length - got)),
                        asio::redirect_error(asio::use_awaitable, ec));
                    EVP_DigestUpdate(md.get(), buf.data(), k);
                    got += k;
                }
                if (ec) break;
                unsigned char digest[32];
                EVP_DigestFinal_ex(md.get(), digest, nullptr);
                std::string body = "sha256=" + ossl::to_hex(digest) + " bytes=" + std::to_string(got) + "\n";
                response = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                           std::to_string(body.size()) + "\r\n\r\n" + body;
                co_await asio::async_write(stream, asio::buffer(response), asio::redirect_error(asio::use_awaitable, ec));
            } else if (path.rfind("/bytes/", 0) == 0) {
                std::uint64_t total = std::stoull(path.substr(7));
                response = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: " +
                           std::to_string(total) + "\r\n\r\n";
                co_await asio::async_write(stream, asio::buffer(response), asio::redirect_error(asio::use_awaitable, ec));
                while (total > 0 && !ec) {
                    auto k = static_cast<std::size_t>(std::min<std::uint64_t>(total, kChunk));
                    co_await asio::async_write(stream, asio::buffer(chunk.data(), k),
                                               asio::redirect_error(asio::use_awaitable, ec));
                    total -= k;
                }
            } else {
                std::string body = "hello from " + host + "\n";
                response = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                           std::to_string(body.size()) + "\r\n\r\n" + body;
                co_await asio::async_write(stream, asio::buffer(response), asio::redirect_error(asio::use_awaitable, ec));
            }
            if (ec || close) break;
        }
        co_await stream.async_shutdown(asio::redirect_error(asio::use_awaitable, ec));
    }

    asio::awaitable<void> accept_loop() {
        for (;;) {
            asio::error_code ec;
            tcp::socket s = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
            if (!acceptor.is_open()) co_return;
            if (ec) continue;
            s.set_option(tcp::no_delay(true), ec);
            asio::co_spawn(io, serve(std::move(s)), asio::detached);
        }
    }
};

OriginServer::OriginServer(const OriginCert& default_cert, const std::map<std::string, const OriginCert*>& by_name,
                           OriginOptions options)
    : impl_(std::make_unique<Impl>()) {
    impl_->options = std::move(options);
    for (std::size_t i = 0; i < kChunk; ++i) impl_->chunk[i] = static_cast<char>(origin_pattern_byte(i));
    SSL_CTX* d = impl_->default_ctx.native_handle();
    SSL_CTX_use_certificate(d, default_cert.cert.get());
    SSL_CTX_use_PrivateKey(d, default_cert.key.get());
    SSL_CTX_set_security_level(d, 0);
    if (impl_->options.max_tls12) SSL_CTX_set_max_proto_version(d, TLS1_2_VERSION);
    SSL_CTX_set_tlsext_servername_callback(d, &Impl::on_sni);
    SSL_CTX_set_tlsext_servername_arg(d, impl_.get());
    for (const auto& [name, cert] : by_name) impl_->by_name.emplace(name, make_ctx(*cert, impl_->options.alpn));
    if (!impl_->options.alpn.empty()) SSL_CTX_set_alpn_select_cb(d, select_alpn, &impl_->options.alpn);
    tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
    impl_->acceptor.open(ep.protocol());
    impl_->acceptor.set_option(tcp::acceptor::reuse_address(true));
    impl_->acceptor.bind(ep);
    impl_->acceptor.listen(4096);
    asio::co_spawn(impl_->io, impl_->accept_loop(), asio::detached);
    for (unsigned i = 0; i < std::max(1U, impl_->options.threads); ++i)
        impl_->threads.emplace_back([this] { impl_->io.run(); });
}

OriginServer::~OriginServer() {
    asio::post(impl_->io, [this] {
        asio::error_code ec;
        impl_->acceptor.close(ec);
    });
    impl_->io.stop();
    for (auto& t : impl_->threads) t.join();
}

std::uint16_t OriginServer::port() const { return impl_->acceptor.local_endpoint().port(); }

}  // namespace testing_support
