// The ca-service listener's HTTP framing, limits and timeouts, driven by a raw TLS 1.3 client
// with a node certificate (curl hides most of what is checked here).

#include "ossl/error.hpp"
#include "ossl/handles.hpp"
#include "support/ca_service.hpp"
#include "support/process.hpp"
#include "support/test_ca.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

using namespace testing_support;
using Catch::Matchers::ContainsSubstring;
using Catch::Matchers::StartsWith;

namespace {

ossl::SslCtx node_context(const TestCa& ca) {
    ossl::SslCtx ctx(SSL_CTX_new(TLS_client_method()));
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_3_VERSION);
    const auto dir = ca.dir / "nodes/node-1";
    REQUIRE(SSL_CTX_use_certificate_chain_file(ctx.get(), (dir / "node.pem").c_str()) == 1);
    REQUIRE(SSL_CTX_use_PrivateKey_file(ctx.get(), (dir / "node.key").c_str(), SSL_FILETYPE_PEM) == 1);
    REQUIRE(SSL_CTX_load_verify_locations(ctx.get(), (ca.dir / "pki/service-ca.pem").c_str(), nullptr) == 1);
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    return ctx;
}

// One TLS connection; reads give up after `read_timeout` (SO_RCVTIMEO).
class RawClient {
public:
    RawClient(SSL_CTX* ctx, std::uint16_t port, std::chrono::seconds read_timeout = std::chrono::seconds(10)) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        timeval tv{static_cast<time_t>(read_timeout.count()), 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) throw std::runtime_error("connect");
        ssl_.reset(SSL_new(ctx));
        SSL_set_fd(ssl_.get(), fd_);
        connected_ = SSL_connect(ssl_.get()) == 1;
    }
    ~RawClient() {
        ssl_.reset();
        if (fd_ >= 0) ::close(fd_);
    }
    RawClient(const RawClient&) = delete;
    RawClient& operator=(const RawClient&) = delete;

    bool connected() const { return connected_; }
    bool send(const std::string& bytes) {
        return SSL_write(ssl_.get(), bytes.data(), static_cast<int>(bytes.size())) == static_cast<int>(bytes.size());
    }
    // Reads until `text` has arrived (true) or the connection ends or times out (false).
    bool read_until(const std::string& text) {
        while (received.find(text) == std::string::npos)
            if (!read_some()) return false;
        return true;
    }
    // Reads until the connection ends (true) or the read times out (false).
    bool read_to_end() {
        for (;;) {
            char buf[4096];
            const int n = SSL_read(ssl_.get(), buf, sizeof buf);
            if (n > 0) {
                received.append(buf, static_cast<std::size_t>(n));
                continue;
            }
            const int err = SSL_get_error(ssl_.get(), n);
            ERR_clear_error();
            return !(err == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK));
        }
    }
    // One complete response (Content-Length framed) taken off `received`; "" if none arrives.
    std::string response() {
        std::size_t end;
        while ((end = received.find("\r\n\r\n")) == std::string::npos)
            if (!read_some()) return "";
        const auto cl = received.find("Content-Length: ");
        std::size_t length = cl < end ? std::stoul(received.substr(cl + 16)) : 0;
        while (received.size() < end + 4 + length)
            if (!read_some()) return "";
        std::string out = received.substr(0, end + 4 + length);
        received.erase(0, out.size());
        return out;
    }
    std::string received;

private:
    bool read_some() {
        char buf[4096];
        const int n = SSL_read(ssl_.get(), buf, sizeof buf);
        if (n <= 0) {
            ERR_clear_error();
            return false;
        }
        received.append(buf, static_cast<std::size_t>(n));
        return true;
    }
    int fd_ = -1;
    ossl::Ssl ssl_;
    bool connected_ = false;
};

std::string get(const std::string& path, const std::string& extra = "") {
    return "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra + "\r\n";
}

std::filesystem::path work_dir(const std::string& name) { return make_temp_dir("splitca-" + name); }

// Plain TCP connections that send nothing: each holds a descriptor of the service once accepted.
class IdleConnections {
public:
    IdleConnections() = default;
    IdleConnections(const IdleConnections&) = delete;
    IdleConnections& operator=(const IdleConnections&) = delete;
    ~IdleConnections() { close_all(); }
    void open(std::uint16_t port, int n) {
        for (int i = 0; i < n; ++i) {
            const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
            sockaddr_in addr{};
            addr.sin_family = AF_INET;
            addr.sin_port = htons(port);
            addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
            fds_.push_back(fd);
        }
    }
    void close_all() {
        for (int fd : fds_) ::close(fd);
        fds_.clear();
    }

private:
    std::vector<int> fds_;
};

// prlimit on a process of another user needs CAP_SYS_RESOURCE, which a container may not
// grant even to root; as the process's own user it needs nothing.
std::vector<std::string> prlimit_as_owner(int pid, const std::string& nofile) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line, uid, gid;
    while (std::getline(status, line)) {
        std::istringstream fields(line);
        std::string key;
        fields >> key;
        if (key == "Uid:") fields >> uid;
        if (key == "Gid:") fields >> gid;
    }
    std::vector<std::string> argv;
    if (uid != std::to_string(::getuid()))
        argv = {"setpriv", "--reuid=" + uid, "--regid=" + gid, "--clear-groups"};
    for (const auto& a : {std::string("prlimit"), std::string("--pid"), std::to_string(pid), "--nofile=" + nofile})
        argv.push_back(a);
    return argv;
}

std::size_t open_descriptors(int pid) {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) ++n;
    return n;
}

}  // namespace

TEST_CASE("the listener frames HTTP/1.1 strictly and keeps connections alive", "[ca-service][listener]") {
    const auto& ca = TestCa::shared();
    CaService svc(ca, work_dir("listener"));
    auto ctx = node_context(ca);
    RawClient c(ctx.get(), svc.port());
    REQUIRE(c.connected());

    SECTION("several requests, two of them in one write, on one connection") {
        REQUIRE(c.send(get("/healthz")));
        auto first = c.response();
        CHECK_THAT(first, StartsWith("HTTP/1.1 200 OK\r\n"));
        CHECK_THAT(first, ContainsSubstring("Connection: keep-alive"));
        REQUIRE(c.send(get("/healthz") + get("/v1/ca")));
        CHECK_THAT(c.response(), StartsWith("HTTP/1.1 200 "));
        auto bundle = c.response();
        CHECK_THAT(bundle, StartsWith("HTTP/1.1 200 "));
        CHECK_THAT(bundle, ContainsSubstring("BEGIN CERTIFICATE"));
    }
    SECTION("a known path with another method is 405, an unknown one 404, both JSON") {
        REQUIRE(c.send("POST /healthz HTTP/1.1\r\nContent-Length: 0\r\n\r\n"));
        auto r = c.response();
        CHECK_THAT(r, StartsWith("HTTP/1.1 405 "));
        CHECK_THAT(r, ContainsSubstring("\"method_not_allowed\""));
        REQUIRE(c.send(get("/v2/leaf")));
        r = c.response();
        CHECK_THAT(r, StartsWith("HTTP/1.1 404 "));
        CHECK_THAT(r, ContainsSubstring("\"not_found\""));
    }
    SECTION("Expect: 100-continue is answered before the body is sent") {
        const std::string body = leaf_request_json({"continue.example.com"}, new_public_key_b64());
        REQUIRE(c.send("POST /v1/leaf HTTP/1.1\r\nContent-Type: application/json\r\nExpect: 100-continue\r\n"
                       "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n"));
        REQUIRE(c.read_until("\r\n\r\n"));
        CHECK_THAT(c.received, StartsWith("HTTP/1.1 100 Continue\r\n\r\n"));
        c.received.clear();
        REQUIRE(c.send(body));
        auto r = c.response();
        CHECK_THAT(r, StartsWith("HTTP/1.1 200 "));
        CHECK_THAT(r, ContainsSubstring("Cache-Control: no-store"));
    }
    SECTION("chunked bodies are refused with a message, and the connection ends") {
        REQUIRE(c.send("POST /v1/leaf HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"));
        auto r = c.response();
        CHECK_THAT(r, StartsWith("HTTP/1.1 400 "));
        CHECK_THAT(r, ContainsSubstring("Content-Length"));
        CHECK_THAT(r, ContainsSubstring("Connection: close"));
        CHECK(c.read_to_end());
    }
    SECTION("oversized heads, bad request lines and bad lengths are 400 malformed_request") {
        const std::string bad = GENERATE(std::string("GET /healthz HTTP/1.1\r\nX-Big: ") + std::string(9000, 'a') + "\r\n\r\n",
                                         std::string("GET /healthz\r\n\r\n"), std::string("GET healthz HTTP/1.1\r\n\r\n"),
                                         std::string("GET /healthz HTTP/2.0\r\n\r\n"),
                                         std::string("POST /v1/leaf HTTP/1.1\r\nContent-Length: 1x\r\n\r\n"),
                                         std::string("POST /v1/leaf HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n"),
                                         std::string("GET /healthz HTTP/1.1\r\n folded: yes\r\n\r\n"));
        REQUIRE(c.send(bad));
        auto r = c.response();
        CHECK_THAT(r, StartsWith("HTTP/1.1 400 "));
        CHECK_THAT(r, ContainsSubstring("\"malformed_request\""));
        CHECK(c.read_to_end());
    }
    SECTION("Connection: close is honoured") {
        REQUIRE(c.send(get("/healthz", "Connection: close\r\n")));
        CHECK_THAT(c.response(), ContainsSubstring("Connection: close"));
        CHECK(c.read_to_end());
    }
}

TEST_CASE("the listener's timeouts and connection limits", "[ca-service][listener]") {
    const auto& ca = TestCa::shared();
    ServiceOptions opts;
    opts.server_extra = "read_timeout_seconds = 1\nkeep_alive_timeout_seconds = 3\nkeep_alive_max_requests = 2\n"
                        "max_connections = 2\nio_threads = 2\n";
    CaService svc(ca, work_dir("listener-limits"), opts);
    auto ctx = node_context(ca);

    SECTION("a request head that stops arriving is dropped after the read timeout") {
        RawClient c(ctx.get(), svc.port());
        REQUIRE(c.connected());
        REQUIRE(c.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"));
        const auto start = std::chrono::steady_clock::now();
        CHECK(c.read_to_end());
        CHECK(c.received.empty());
        CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
    }
    SECTION("an idle keep-alive connection is closed after the keep-alive timeout, not the read timeout") {
        RawClient c(ctx.get(), svc.port());
        REQUIRE(c.connected());
        REQUIRE(c.send(get("/healthz")));
        REQUIRE_THAT(c.response(), StartsWith("HTTP/1.1 200 "));
        std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // past the read timeout
        REQUIRE(c.send(get("/healthz")));
        CHECK_THAT(c.response(), StartsWith("HTTP/1.1 200 "));  // the second and last one
        CHECK(c.read_to_end());
    }
    SECTION("a connection idle for longer than the keep-alive timeout is closed") {
        RawClient c(ctx.get(), svc.port());
        REQUIRE(c.connected());
        const auto start = std::chrono::steady_clock::now();
        CHECK(c.read_to_end());
        const auto idle = std::chrono::steady_clock::now() - start;
        CHECK(idle > std::chrono::milliseconds(2500));
        CHECK(idle < std::chrono::seconds(8));
    }
    SECTION("keep_alive_max_requests ends the connection after that many requests") {
        RawClient c(ctx.get(), svc.port());
        REQUIRE(c.connected());
        REQUIRE(c.send(get("/healthz")));
        CHECK_THAT(c.response(), ContainsSubstring("Connection: keep-alive"));
        REQUIRE(c.send(get("/healthz")));
        CHECK_THAT(c.response(), ContainsSubstring("Connection: close"));
        CHECK(c.read_to_end());
    }
    SECTION("beyond max_connections clients wait until a connection ends") {
        auto a = std::make_unique<RawClient>(ctx.get(), svc.port());
        RawClient b(ctx.get(), svc.port());
        REQUIRE(a->connected());
        REQUIRE(b.connected());
        std::atomic<bool> third_done{false}, third_ok{false};
        std::thread t([&] {
            RawClient third(ctx.get(), svc.port());
            third_ok = third.connected() && third.send(get("/healthz")) &&
                       third.response().starts_with("HTTP/1.1 200 ");
            third_done = true;
        });
        std::this_thread::sleep_for(std::chrono::milliseconds(700));
        CHECK_FALSE(third_done.load());
        a.reset();  // frees a connection
        for (int i = 0; i < 50 && !third_done; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
        t.join();
        CHECK(third_ok.load());
    }
}

TEST_CASE("a refusal sent before the body was read still reaches a client that is still sending",
          "[ca-service][listener]") {
    // Closing with the body unread would make the kernel reset the connection: the client's
    // next write fails and it never reads the answer (curl then reports no response at all).
    // The service reads and drops the rest first, for a while (a lingering close).
    ::signal(SIGPIPE, SIG_IGN);  // a write into a reset connection fails instead of ending the test
    const auto& ca = TestCa::shared();
    CaService svc(ca, work_dir("listener-linger"));
    auto ctx = node_context(ca);
    const std::string chunk(8 * 1024, 'x');
    for (const std::string head : {"POST /v1/leaf HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                                   "Content-Length: 65536\r\n\r\n",  // over the 16 KiB limit: 413
                                   "POST /v1/leaf HTTP/1.1\r\nContent-Length: 12\r\nContent-Length: 13\r\n\r\n"}) {
        RawClient c(ctx.get(), svc.port());
        REQUIRE(c.connected());
        REQUIRE(c.send(head));
        bool sent_all = true;
        for (int i = 0; i < 8 && sent_all; ++i) {  // a slow uploader, still sending after the answer
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
            sent_all = c.send(chunk);
        }
        CHECK(sent_all);
        const std::string answer = c.response();
        CHECK_THAT(answer, StartsWith(head.find("65536") != std::string::npos ? "HTTP/1.1 413 " : "HTTP/1.1 400 "));
    }
}

TEST_CASE("the connection limit fits the open-file limit; out of descriptors, accepting pauses instead of spinning",
          "[ca-service][listener]") {
    const auto& ca = TestCa::shared();
    ServiceOptions opts;
    opts.launcher = {"prlimit", "--nofile=100:100", "--"};
    CaService svc(ca, work_dir("listener-descriptors"), opts);
    INFO(svc.log());
    // (100 descriptors - 64 kept for the service's own files) / 1 a connection.
    CHECK_THAT(svc.log(), ContainsSubstring("server.max_connections is 1024 but the open-file limit of 100 "
                                            "descriptors leaves room for 36"));
    CHECK_THAT(svc.log(), ContainsSubstring("up to 36 connections at once"));

    // The soft limit lowered under the running service to what it holds: accept() now fails
    // with EMFILE while the clients stay queued.
    const int pid = svc.role_pid("front");  // the process that accepts
    const std::string held = std::to_string(open_descriptors(pid));
    const auto lowered = run(prlimit_as_owner(pid, held + ":"));
    INFO(lowered.output);
    REQUIRE(lowered.exit_code == 0);
    IdleConnections idle;
    idle.open(svc.port(), 5);
    for (int i = 0; i < 50 && svc.log().find("cannot accept connections") == std::string::npos; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    CHECK_THAT(svc.log(), ContainsSubstring("cannot accept connections: Too many open files"));
    const double cpu_before = process_cpu_seconds(pid);
    std::this_thread::sleep_for(std::chrono::seconds(1));
    CHECK(process_cpu_seconds(pid) - cpu_before < 0.3);  // an accept loop retrying at once burns ~1 s a second

    // Room again: the service takes new clients by itself.
    REQUIRE(run(prlimit_as_owner(pid, "100:")).exit_code == 0);
    idle.close_all();
    const auto dir = ca.dir / "nodes/node-1";
    const auto health = curl_request(ca, svc.url("/healthz"), (dir / "node.pem").string(), (dir / "node.key").string());
    INFO(health.curl_error << health.body);
    CHECK(health.status == 200);
}

TEST_CASE("the removed worker_threads key is refused with its replacement named", "[ca-service][listener]") {
    const auto& ca = TestCa::shared();
    auto dir = work_dir("listener-conf");
    auto good = read_file(ca.dir / "ca-service/ca-service.toml");
    std::ofstream(dir / "c.toml") << good << "\n[server]\nworker_threads = 64\n";
    auto r = run({(kBinDir / "ca-service").string(), "--config", (dir / "c.toml").string()});
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.output, ContainsSubstring("server.worker_threads"));
    CHECK_THAT(r.output, ContainsSubstring("io_threads"));
    std::ofstream(dir / "c.toml") << good << "\n[server]\nio_threads = 100000\n";
    CHECK_THAT(run({(kBinDir / "ca-service").string(), "--config", (dir / "c.toml").string()}).output,
               ContainsSubstring("server.io_threads"));
    std::filesystem::remove_all(dir);
}
