#include "support/scripted_origin.hpp"

#include "support/digest.hpp"

#include "ossl/encoding.hpp"
#include "ossl/handles.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace testing_support {

namespace {

constexpr std::size_t kMaxHead = 64 * 1024;
constexpr std::size_t kMaxBody = 256 << 20;

class Conn final : public OriginConnection {
public:
    explicit Conn(SSL* ssl) : ssl_(ssl) {}
    bool write(const std::string& bytes) override {
        std::size_t off = 0;
        while (off < bytes.size()) {
            std::size_t n = 0;
            if (SSL_write_ex(ssl_, bytes.data() + off, bytes.size() - off, &n) != 1) return false;
            off += n;
        }
        return true;
    }
    // Buffered reads for the request parser.
    bool fill() {
        char tmp[16384];
        std::size_t n = 0;
        if (SSL_read_ex(ssl_, tmp, sizeof tmp, &n) != 1) return false;
        buf_.append(tmp, n);
        return true;
    }
    bool read_line(std::string& line, std::size_t max) {
        for (;;) {
            auto p = buf_.find("\r\n");
            if (p != std::string::npos) {
                line = buf_.substr(0, p);
                buf_.erase(0, p + 2);
                return true;
            }
            if (buf_.size() > max || !fill()) return false;
        }
    }
    bool read_exact(std::string& out, std::size_t n) {
        while (buf_.size() < n)
            if (!fill()) {
                out += buf_;
                buf_.clear();
                return false;
            }
        out += buf_.substr(0, n);
        buf_.erase(0, n);
        return true;
    }

private:
    SSL* ssl_;
    std::string buf_;
};

}  // namespace

void OriginConnection::pause(std::chrono::milliseconds d) {
    std::this_thread::sleep_for(d);
}

std::string http_response(const std::string& body, const std::string& extra_headers) {
    return "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n" + extra_headers + "\r\n" + body;
}

struct ScriptedOrigin::Impl {
    OriginHandler handler;
    ossl::SslCtx ctx;
    int listen_fd = -1;
    std::uint16_t port = 0;
    std::atomic<bool> stopping{false};
    std::thread acceptor;
    mutable std::mutex mu;
    std::vector<std::thread> workers;
    std::vector<int> fds;
    std::vector<std::string> received;

    void note(std::string line) {
        std::lock_guard lock(mu);
        received.push_back(std::move(line));
    }

    void serve(int fd) {
        ossl::Ssl owned(SSL_new(ctx.get()));
        SSL* ssl = owned.get();
        SSL_set_fd(ssl, fd);
        Conn c(ssl);
        if (SSL_accept(ssl) == 1) {
            for (;;) {
                OriginRequest req;
                std::string line;
                if (!c.read_line(line, kMaxHead)) break;
                auto sp1 = line.find(' '), sp2 = line.rfind(' ');
                if (sp1 == std::string::npos || sp2 <= sp1) break;
                req.method = line.substr(0, sp1);
                req.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
                bool ok = true;
                while ((ok = c.read_line(line, kMaxHead)) && !line.empty()) {
                    auto colon = line.find(':');
                    if (colon == std::string::npos) continue;
                    std::string k = line.substr(0, colon);
                    for (auto& ch : k) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
                    std::string v = line.substr(colon + 1);
                    v.erase(0, v.find_first_not_of(' '));
                    req.headers[k] = v;
                }
                if (!ok) break;
                bool complete = true;
                if (req.headers.count("transfer-encoding") != 0) {
                    req.chunked = true;
                    for (;;) {
                        if (!c.read_line(line, 1024)) {
                            complete = false;
                            break;
                        }
                        std::size_t size = std::stoul(line, nullptr, 16);
                        if (size == 0) {
                            while ((complete = c.read_line(line, 1024)) && !line.empty()) {
                            }
                            break;
                        }
                        std::string crlf;
                        if (size > kMaxBody || !c.read_exact(req.body, size) || !c.read_exact(crlf, 2)) {
                            complete = false;
                            break;
                        }
                    }
                } else if (auto cl = req.headers.find("content-length"); cl != req.headers.end()) {
                    complete =
                        c.read_exact(req.body, std::min<std::size_t>(std::stoull(cl->second), kMaxBody));
                }
                if (!complete) {
                    note(req.method + " " + req.target +
                         " incomplete bytes=" + std::to_string(req.body.size()));
                    break;
                }
                note(req.method + " " + req.target + " complete bytes=" + std::to_string(req.body.size()) +
                     " sha256=" + sha256_hex(req.body));
                const auto conn = req.headers.find("connection");
                if (!handler(req, c) || (conn != req.headers.end() && conn->second == "close")) break;
            }
            SSL_shutdown(ssl);
        }
        ERR_clear_error();
        ::shutdown(fd, SHUT_RDWR);
    }
};

ScriptedOrigin::ScriptedOrigin(const OriginCert& cert, OriginHandler handler)
    : impl_(std::make_unique<Impl>()) {
    // The proxy resets connections on purpose (blocks); a write to one must fail, not kill the test.
    ::signal(SIGPIPE, SIG_IGN);
    impl_->handler = std::move(handler);
    impl_->ctx.reset(SSL_CTX_new(TLS_server_method()));
    SSL_CTX_use_certificate(impl_->ctx.get(), cert.cert.get());
    SSL_CTX_use_PrivateKey(impl_->ctx.get(), cert.key.get());
    impl_->listen_fd = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(impl_->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(impl_->listen_fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(impl_->listen_fd, 64) != 0)
        throw std::runtime_error("scripted origin: cannot listen");
    socklen_t len = sizeof a;
    ::getsockname(impl_->listen_fd, reinterpret_cast<sockaddr*>(&a), &len);
    impl_->port = ntohs(a.sin_port);
    impl_->acceptor = std::thread([this] {
        while (!impl_->stopping) {
            pollfd p{impl_->listen_fd, POLLIN, 0};
            if (::poll(&p, 1, 100) <= 0) continue;
            int fd = ::accept(impl_->listen_fd, nullptr, nullptr);
            if (fd < 0) continue;
            std::lock_guard lock(impl_->mu);
            impl_->fds.push_back(fd);
            impl_->workers.emplace_back([this, fd] { impl_->serve(fd); });
        }
    });
}

ScriptedOrigin::~ScriptedOrigin() {
    impl_->stopping = true;
    impl_->acceptor.join();
    {
        std::lock_guard lock(impl_->mu);
        for (int fd : impl_->fds) ::shutdown(fd, SHUT_RDWR);
    }
    for (auto& t : impl_->workers) t.join();
    for (int fd : impl_->fds) ::close(fd);
    ::close(impl_->listen_fd);
}

std::uint16_t ScriptedOrigin::port() const {
    return impl_->port;
}

std::vector<std::string> ScriptedOrigin::received() const {
    std::lock_guard lock(impl_->mu);
    return impl_->received;
}

}  // namespace testing_support
