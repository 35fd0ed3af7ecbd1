#include "support/fake_icap.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

namespace testing_support {

struct FakeIcap::Impl {
    std::atomic<Behaviour> behaviour;
    std::atomic<unsigned> transactions{0};
    std::atomic<bool> stopping{false};
    int listener = -1;
    std::uint16_t port = 0;
    std::thread acceptor;
    std::mutex mu;
    std::set<int> open;
    std::vector<std::thread> workers;

    // Reads into `buf` until it holds at least `n` bytes; false when the peer closed.
    bool fill(int fd, std::string& buf, std::size_t n) {
        char tmp[16384];
        while (buf.size() < n) {
            const ssize_t got = ::recv(fd, tmp, sizeof tmp, 0);
            if (got <= 0) return false;
            buf.append(tmp, static_cast<std::size_t>(got));
        }
        return true;
    }
    bool read_line(int fd, std::string& buf, std::string& line) {
        for (;;) {
            const auto nl = buf.find("\r\n");
            if (nl != std::string::npos) {
                line = buf.substr(0, nl);
                buf.erase(0, nl + 2);
                return true;
            }
            if (buf.size() > 65536 || !fill(fd, buf, buf.size() + 1)) return false;
        }
    }
    bool send_all(int fd, const std::string& s) {
        return ::send(fd, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size());
    }

    void serve(int fd) {
        std::string buf;
        for (;;) {
            std::size_t end;
            while ((end = buf.find("\r\n\r\n")) == std::string::npos)
                if (!fill(fd, buf, buf.size() + 1)) return;
            const std::string head = buf.substr(0, end + 4);
            buf.erase(0, end + 4);
            const Behaviour b = behaviour.load();
            if (head.rfind("OPTIONS ", 0) == 0) {
                const std::string answer =
                    b == Behaviour::options_refused
                        ? "ICAP/1.0 404 Service Not Found\r\nISTag: \"fake-1\"\r\nEncapsulated: null-body=0\r\n\r\n"
                        : "ICAP/1.0 200 OK\r\nMethods: RESPMOD, REQMOD\r\nISTag: \"fake-1\"\r\nAllow: 204\r\n"
                          "Max-Connections: 8\r\nOptions-TTL: 60\r\nEncapsulated: null-body=0\r\n\r\n";
                if (!send_all(fd, answer)) return;
                continue;
            }
            // The encapsulated heads, then the chunked body to its last chunk.
            std::size_t body_at = 0;
            bool has_body = false;
            for (const char* name : {"req-body=", "res-body=", "null-body="}) {
                const auto at = head.find(name);
                if (at == std::string::npos) continue;
                body_at = std::stoul(head.substr(at + std::strlen(name)));
                has_body = std::strcmp(name, "null-body=") != 0;
            }
            if (!fill(fd, buf, body_at)) return;
            std::string http_head = buf.substr(0, body_at);
            buf.erase(0, body_at);
            std::string line, body;
            while (has_body) {
                if (!read_line(fd, buf, line)) return;
                const std::size_t size = std::stoul(line, nullptr, 16);
                if (size == 0) {
                    if (!read_line(fd, buf, line)) return;  // the empty line after the last chunk
                    break;
                }
                if (!fill(fd, buf, size + 2)) return;
                body += buf.substr(0, size);
                buf.erase(0, size + 2);
            }
            const bool reqmod = head.rfind("REQMOD ", 0) == 0;
            ++transactions;
            const std::string page = "<html><body>blocked by the fake engine</body></html>";
            const std::string http = "HTTP/1.1 403 Forbidden\r\nContent-Type: text/html\r\nContent-Length: " +
                                     std::to_string(page.size()) + "\r\n\r\n";
            char size[32];
            std::snprintf(size, sizeof size, "%zx\r\n", page.size());
            switch (b) {
            case Behaviour::allow_204:
            case Behaviour::options_refused:
                if (!send_all(fd, "ICAP/1.0 204 No Content\r\nISTag: \"fake-1\"\r\nEncapsulated: null-body=0\r\n\r\n")) return;
                break;
            case Behaviour::block_page:
                if (!send_all(fd, "ICAP/1.0 200 OK\r\nISTag: \"fake-1\"\r\nX-Infection-Found: Type=0; Resolution=2; "
                                  "Threat=Fake.Threat;\r\nEncapsulated: res-hdr=0, res-body=" +
                                      std::to_string(http.size()) + "\r\n\r\n" + http + size + page + "\r\n0\r\n\r\n"))
                    return;
                break;
            case Behaviour::close_mid_answer:
                send_all(fd, "ICAP/1.0 200 OK\r\nISTag: \"fake-1\"\r\nEncapsulated: res-hdr=0, res-body=" +
                                 std::to_string(http.size()) + "\r\n\r\n" + http.substr(0, 20));
                return;
            case Behaviour::garbage:
                send_all(fd, "hello, I am not an ICAP server\r\n\r\n");
                return;
            case Behaviour::stall: {
                pollfd p{fd, POLLIN, 0};
                while (!stopping.load()) {
                    if (::poll(&p, 1, 100) > 0) {
                        char c;
                        if (::recv(fd, &c, 1, 0) <= 0) return;
                    }
                }
                return;
            }
            case Behaviour::lying_encapsulated:
                if (!send_all(fd, "ICAP/1.0 200 OK\r\nISTag: \"fake-1\"\r\nEncapsulated: res-hdr=0, res-body=12\r\n\r\n" +
                                      http + size + page + "\r\n0\r\n\r\n"))
                    return;
                break;
            case Behaviour::redact:
            case Behaviour::redact_elsewhere: {
                if (!reqmod) {
                    if (!send_all(fd, "ICAP/1.0 204 No Content\r\nISTag: \"fake-1\"\r\nEncapsulated: null-body=0\r\n\r\n"))
                        return;
                    break;
                }
                for (std::size_t at; (at = body.find("secret")) != std::string::npos;) body.replace(at, 6, "[redacted]");
                http_head.insert(http_head.size() - 2, "X-Redacted: yes\r\n");
                if (b == Behaviour::redact_elsewhere) {
                    const auto sp = http_head.find(' ');
                    http_head.replace(sp + 1, http_head.find(' ', sp + 1) - sp - 1, "https://elsewhere.example/collect");
                }
                std::string chunk;
                if (!body.empty()) {
                    std::snprintf(size, sizeof size, "%zx\r\n", body.size());
                    chunk = size + body + "\r\n";
                }
                if (!send_all(fd, "ICAP/1.0 200 OK\r\nISTag: \"fake-1\"\r\nEncapsulated: req-hdr=0, req-body=" +
                                      std::to_string(http_head.size()) + "\r\n\r\n" + http_head + chunk + "0\r\n\r\n"))
                    return;
                break;
            }
            case Behaviour::status_500:
                if (!send_all(fd, "ICAP/1.0 500 Server Error\r\nISTag: \"fake-1\"\r\nEncapsulated: null-body=0\r\n\r\n"))
                    return;
                break;
            }
        }
    }
};

FakeIcap::FakeIcap(Behaviour b) : impl_(std::make_shared<Impl>()) {
    impl_->behaviour = b;
    impl_->listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(impl_->listener, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(impl_->listener, 64) != 0)
        throw std::runtime_error(std::string("fake ICAP server: ") + std::strerror(errno));
    socklen_t len = sizeof a;
    ::getsockname(impl_->listener, reinterpret_cast<sockaddr*>(&a), &len);
    impl_->port = ntohs(a.sin_port);
    impl_->acceptor = std::thread([impl = impl_.get()] {
        while (!impl->stopping.load()) {
            pollfd p{impl->listener, POLLIN, 0};
            if (::poll(&p, 1, 100) <= 0) continue;
            const int fd = ::accept4(impl->listener, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0) continue;
            std::lock_guard lock(impl->mu);
            impl->open.insert(fd);
            impl->workers.emplace_back([impl, fd] {
                impl->serve(fd);
                std::lock_guard l(impl->mu);
                impl->open.erase(fd);
                ::close(fd);
            });
        }
    });
}

FakeIcap::~FakeIcap() {
    impl_->stopping = true;
    impl_->acceptor.join();
    {
        std::lock_guard lock(impl_->mu);
        for (int fd : impl_->open) ::shutdown(fd, SHUT_RDWR);
    }
    for (auto& w : impl_->workers) w.join();
    ::close(impl_->listener);
}

std::uint16_t FakeIcap::port() const { return impl_->port; }
void FakeIcap::set(Behaviour b) { impl_->behaviour = b; }
unsigned FakeIcap::transactions() const { return impl_->transactions.load(); }

}  // namespace testing_support
