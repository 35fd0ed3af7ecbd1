#pragma once
// A real proxy-node process for integration tests: writes a proxy-node.toml pointing at a
// test CaService with the TestCa's node-1 identity, trusting a test origin root for
// upstreams, starts build/bin/proxy-node and waits for its management /healthz.

#include "support/ca_service.hpp"
#include "support/process.hpp"
#include "support/test_ca.hpp"

#include "ossl/handles.hpp"

#include <nlohmann/json.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <csignal>
#include <filesystem>
#include <functional>
#include <fstream>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace testing_support {

struct ProxyOptions {
    std::map<std::string, std::string> hosts;  // [upstream.hosts]
    std::string limits;                        // extra lines for [limits]
    std::string ca_service_extra;              // extra lines for [ca_service]
    std::string leaf_extra;                    // extra lines for [leaf]
    bool system_trust = false;                 // tests trust only their own origin root
    std::string sections;                      // extra tables appended at the end ([access], [bypass])
    std::string node = "node-1";               // identity from the TestCa's nodes/<node>/
    std::string inspection;                    // lines for [inspection] (and its sub-tables)
    std::vector<std::string> launcher;         // argv before the binary's, e.g. {"prlimit", "--nofile=100:100", "--"}
    std::string netns;                         // a network namespace to run it in (management asked there too)
    std::string listen_extra;                  // extra lines for [listen] (transparent = ...)
    std::string access;                        // extra lines for [access]
    // access.denied_destinations: the node's default less loopback, where the test origins
    // listen; empty: the key is not written (the node's default applies).
    std::string denied_destinations = kDeniedExceptLoopback;

    static constexpr const char* kDeniedExceptLoopback =
        R"(["0.0.0.0/8", "::/128", "169.254.0.0/16", "fe80::/10", "224.0.0.0/4", "ff00::/8", "255.255.255.255/32"])";
};

class ProxyNode {
public:
    ProxyNode(const TestCa& ca, std::uint16_t ca_port, std::filesystem::path work, const std::filesystem::path& extra_ca,
              ProxyOptions options = {})
        : ca_(ca), work_(std::move(work)), port_(free_port()), mgmt_port_(free_port()), launcher_(options.launcher) {
        if (!options.netns.empty()) via_ = {"ip", "netns", "exec", options.netns};
        launcher_.insert(launcher_.begin(), via_.begin(), via_.end());
        std::filesystem::create_directories(work_);
        const auto& d = ca.dir;
        std::ofstream cfg(config_file());
        cfg << "[node]\nname = \"" << options.node << "\"\n"
            << "[listen]\nproxy = \"127.0.0.1:" << port_ << "\"\nmanagement = \"127.0.0.1:" << mgmt_port_ << "\"\n" << options.listen_extra
            << "[ca_service]\nurl = \"https://127.0.0.1:" << ca_port << "\"\n"
            << "server_ca = \"" << (d / "pki/service-ca.pem").string() << "\"\n"
            << "certificate = \"" << (d / "nodes" / options.node / "node.pem").string() << "\"\n"
            << "private_key = \"" << (d / "nodes" / options.node / "node.key").string() << "\"\n"
            << options.ca_service_extra
            << "[upstream]\nextra_ca = \"" << extra_ca.string() << "\"\n"
            << "system_trust = " << (options.system_trust ? "true" : "false") << "\n"
            << "[upstream.hosts]\n";
        for (const auto& [k, v] : options.hosts) cfg << '"' << k << "\" = \"" << v << "\"\n";
        cfg << "[leaf]\n" << options.leaf_extra << "[limits]\n" << options.limits
            << "[log]\nconnections = \"" << connection_log().string() << "\"\n"
            << "[inspection]\n" << options.inspection;
        if (!options.access.empty() || !options.denied_destinations.empty()) {
            cfg << "[access]\n" << options.access;
            if (!options.denied_destinations.empty()) cfg << "denied_destinations = " << options.denied_destinations << "\n";
        }
        cfg << options.sections;
        cfg.close();
        start();
    }
    ~ProxyNode() { child_.reset(); }

    void start() {
        std::vector<std::string> argv = launcher_;
        for (const auto& a : {(kBinDir / "proxy-node").string(), std::string("--config"), config_file().string()})
            argv.push_back(a);
        child_ = std::make_unique<Child>(argv, work_ / "proxy.log");
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (std::chrono::steady_clock::now() < deadline) {
            if (!child_->running()) throw std::runtime_error("proxy-node exited:\n" + log());
            auto r = mgmt_get("/healthz");
            if (r.exit_code == 0 && r.output.find("\"status\"") != std::string::npos) return;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        throw std::runtime_error("proxy-node did not answer /healthz:\n" + log());
    }
    // Signal and wait; returns the exit code (-1 if it did not exit in time).
    int stop(int signal = SIGTERM, std::chrono::seconds wait = std::chrono::seconds(20)) {
        if (!child_) return -1;
        child_->kill(signal);
        int rc = child_->wait(wait);
        return rc;
    }
    Child& child() { return *child_; }

    std::uint16_t port() const { return port_; }
    std::uint16_t mgmt_port() const { return mgmt_port_; }
    std::string proxy_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
    std::string mgmt_url(const std::string& path) const {
        return "http://127.0.0.1:" + std::to_string(mgmt_port_) + path;
    }
    // GET on the management listener, from the node's network namespace.
    RunResult mgmt_get(const std::string& path) const {
        std::vector<std::string> argv = via_;
        argv.insert(argv.end(), {"curl", "-s", "--max-time", "2", mgmt_url(path)});
        return run(argv);
    }
    std::filesystem::path config_file() const { return work_ / "proxy-node.toml"; }
    std::filesystem::path connection_log() const { return work_ / "connections.jsonl"; }
    std::string log() const { return read_file(work_ / "proxy.log") + read_file(connection_log()); }

    // Connection records (type == "connection") logged so far.
    std::vector<nlohmann::json> records() const {
        std::vector<nlohmann::json> out;
        std::ifstream in(connection_log());
        for (std::string line; std::getline(in, line);) {
            auto j = nlohmann::json::parse(line, nullptr, false);
            if (j.is_object() && j.value("type", "") == "connection") out.push_back(j);
        }
        return out;
    }
    // How many records name `host` once the node handles no connection (so the count
    // includes the connection the caller just finished with).
    std::size_t record_count(const std::string& host) const {
        settle();
        std::size_t n = 0;
        for (const auto& r : records())
            if (r.value("host", "") == host) ++n;
        return n;
    }
    // Waits (at most 10 s) until the node handles no connection: a connection's line is
    // written when the proxy finishes with it, which can be just after the client returned,
    // so a record read earlier may still be the previous connection's.
    void settle() const {
        for (int i = 0; i < 200; ++i) {
            auto h = mgmt_get("/healthz");
            if (h.output.find("\"active_connections\":0") != std::string::npos) return;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    }
    // The first record for `host` written after `before` of them existed (a connection is
    // logged when it ends, which may be just after the client returned); null after 5 s.
    nlohmann::json record_after(const std::string& host, std::size_t before) const {
        settle();
        for (int i = 0; i < 100; ++i) {
            std::size_t n = 0;
            for (const auto& r : records())
                if (r.value("host", "") == host && n++ == before) return r;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        return nullptr;
    }
    // The latest record for `host`, waiting briefly for it to be written.
    nlohmann::json last_record(const std::string& host) const {
        settle();
        for (int i = 0; i < 100; ++i) {
            auto all = records();
            for (auto it = all.rbegin(); it != all.rend(); ++it)
                if ((*it).value("host", "") == host) return *it;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        return nullptr;
    }

private:
    const TestCa& ca_;
    std::filesystem::path work_;
    std::uint16_t port_;
    std::uint16_t mgmt_port_;
    std::vector<std::string> launcher_;
    std::vector<std::string> via_;  // ip netns exec NS, when it runs in one
    std::unique_ptr<Child> child_;
};

// A raw TCP client for sending what no well-behaved client would; `from` binds a source
// address on loopback (127.0.0.2 is another client).
class RawClient {
public:
    explicit RawClient(std::uint16_t port, const char* from = nullptr) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
        if (fd_ < 0) throw std::runtime_error("socket: " + std::string(std::strerror(errno)));
        if (from != nullptr) {
            sockaddr_in src{};
            src.sin_family = AF_INET;
            ::inet_pton(AF_INET, from, &src.sin_addr);
            if (::bind(fd_, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) {
                ::close(fd_);
                throw std::runtime_error("bind " + std::string(from));
            }
        }
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            ::close(fd_);
            throw std::runtime_error("connect: " + std::string(std::strerror(errno)));
        }
    }
    ~RawClient() { ::close(fd_); }
    RawClient(const RawClient&) = delete;
    RawClient& operator=(const RawClient&) = delete;
    int fd() const { return fd_; }
    bool send(const std::string& s) {
        return ::send(fd_, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size());
    }
    // Everything until the peer closes or `timeout` passes; `closed` says which.
    std::string read_all(std::chrono::milliseconds timeout, bool& closed) {
        return read_until(timeout, closed, "");
    }
    // Reads until `text` has arrived (empty: until the peer closes), the peer closes, or
    // `timeout` passes.
    std::string read_until(std::chrono::milliseconds timeout, bool& closed, const std::string& text) {
        std::string out;
        auto deadline = std::chrono::steady_clock::now() + timeout;
        closed = false;
        for (;;) {
            if (!text.empty() && out.find(text) != std::string::npos) return out;
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) return out;
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
            char buf[4096];
            ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n <= 0) {
                closed = true;
                return out;
            }
            out.append(buf, static_cast<std::size_t>(n));
        }
    }

private:
    int fd_;
};

// A client that speaks TLS through a CONNECT tunnel itself: every send() is one SSL_write
// (one TLS record for up to 16 KiB), so a test controls how a body is cut.
class TunnelClient {
public:
    // `alpn`: one protocol to offer (e.g. "h2"), none when empty.
    TunnelClient(std::uint16_t proxy_port, std::uint16_t origin_port, const std::filesystem::path& root,
                 const std::string& host, const std::string& alpn = "") {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        timeval tv{10, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(proxy_port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
            throw std::runtime_error("connect to proxy");
        const std::string target = host + ":" + std::to_string(origin_port);
        const std::string req = "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n\r\n";
        ::send(fd_, req.data(), req.size(), MSG_NOSIGNAL);
        std::string head;
        char c;
        while (head.find("\r\n\r\n") == std::string::npos && ::recv(fd_, &c, 1, 0) == 1) head += c;
        if (head.rfind("HTTP/1.1 200", 0) != 0) throw std::runtime_error("CONNECT refused: " + head);
        ctx_.reset(SSL_CTX_new(TLS_client_method()));
        SSL_CTX_load_verify_locations(ctx_.get(), root.c_str(), nullptr);
        SSL_CTX_set_verify(ctx_.get(), SSL_VERIFY_PEER, nullptr);
        ssl_.reset(SSL_new(ctx_.get()));
        SSL_set_fd(ssl_.get(), fd_);
        SSL_set_tlsext_host_name(ssl_.get(), host.c_str());
        SSL_set1_host(ssl_.get(), host.c_str());
        if (!alpn.empty()) {
            std::string wire = std::string(1, static_cast<char>(alpn.size())) + alpn;
            SSL_set_alpn_protos(ssl_.get(), reinterpret_cast<const unsigned char*>(wire.data()),
                                static_cast<unsigned>(wire.size()));
        }
        if (SSL_connect(ssl_.get()) != 1) throw std::runtime_error("TLS through the proxy failed");
    }
    // The protocol the proxy selected by ALPN ("" for none).
    std::string alpn() const {
        const unsigned char* p = nullptr;
        unsigned n = 0;
        SSL_get0_alpn_selected(ssl_.get(), &p, &n);
        return p == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(p), n);
    }
    ~TunnelClient() { ::close(fd_); }

    bool send(const std::string& bytes) {
        std::size_t n = 0;
        return SSL_write_ex(ssl_.get(), bytes.data(), bytes.size(), &n) == 1;
    }
    // Reads until `done(received)` or the connection ends (or 10 s pass).
    std::string read(const std::function<bool(const std::string&)>& done = nullptr) {
        char buf[16384];
        for (;;) {
            if (done && done(received_)) break;
            std::size_t n = 0;
            if (SSL_read_ex(ssl_.get(), buf, sizeof buf, &n) != 1) {
                closed_ = true;
                break;
            }
            received_.append(buf, n);
        }
        ERR_clear_error();
        return received_;
    }
    bool closed() const { return closed_; }

private:
    int fd_ = -1;
    ossl::SslCtx ctx_;
    ossl::Ssl ssl_;
    std::string received_;
    bool closed_ = false;
};

struct CurlResult {
    int exit_code = -1;
    int status = 0;
    std::string body;
    std::string headers;
    std::string output;  // curl's stderr/stdout
};

// The value of header `name` (lower case) in a raw header block, "" when absent.
inline std::string header_value(const std::string& headers, const std::string& name) {
    std::string lower = headers;
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto p = lower.find("\n" + name + ":");
    if (p == std::string::npos) return "";
    auto start = p + name.size() + 2;
    auto end = headers.find('\r', start);
    std::string v = headers.substr(start, end - start);
    v.erase(0, v.find_first_not_of(' '));
    return v;
}

// Waits (at most 10 s) until something accepts TCP connections on 127.0.0.1:`port` (a
// server started by the test, e.g. openssl s_server); false if nothing does.
inline bool wait_for_listener(std::uint16_t port) {
    for (int i = 0; i < 200; ++i) {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        const bool up = fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
        if (fd >= 0) ::close(fd);
        if (up) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
}

// curl through the proxy trusting only `root_ca` (the interception root).
inline CurlResult curl_via(const ProxyNode& proxy, const std::filesystem::path& root_ca, const std::string& url,
                           const std::vector<std::string>& extra = {}) {
    auto tmp = make_temp_dir("splitca-curl-proxy");
    std::vector<std::string> argv = {"curl", "-sS", "--max-time", "60", "-x", proxy.proxy_url(), "--cacert",
                                     root_ca.string(), "--capath", "/nonexistent", "-D", (tmp / "headers").string(),
                                     "-o", (tmp / "body").string(), "-w", "\n%{http_code}"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back(url);
    auto r = run(argv);
    CurlResult out;
    out.exit_code = r.exit_code;
    out.output = r.output;
    auto nl = r.output.rfind('\n');
    try {
        out.status = std::stoi(r.output.substr(nl + 1));
    } catch (...) {
        out.status = 0;
    }
    out.body = read_file(tmp / "body");
    out.headers = read_file(tmp / "headers");
    std::filesystem::remove_all(tmp);
    return out;
}

}  // namespace testing_support
