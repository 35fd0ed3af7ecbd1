// proxy-node under bad input, a ca-service outage, shutdown, and plain HTTP.

#include "proxy_harness.hpp"
#include "ossl/pem.hpp"
#include "support/origin_pki.hpp"
#include "support/origin_server.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <arpa/inet.h>
#include <csignal>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <future>
#include <thread>

using namespace testing_support;
using Catch::Matchers::ContainsSubstring;

namespace {

std::filesystem::path work_dir(const std::string& name) { return make_temp_dir("splitca-proxy-" + name); }

struct Env {
    const TestCa& ca = TestCa::shared();
    OriginPki pki;
    OriginCert cached = pki.issue(valid_for({"cached.test.example"}));
    OriginCert fresh = pki.issue(valid_for({"new.test.example"}));
    OriginCert later = pki.issue(valid_for({"later.test.example"}));
    OriginCert good = pki.issue(valid_for({"good.test.example"}));
    std::unique_ptr<OriginServer> origin;
    std::filesystem::path dir = work_dir("res-origin");

    Env() {
        origin = std::make_unique<OriginServer>(
            good, std::map<std::string, const OriginCert*>{
                      {"cached.test.example", &cached}, {"new.test.example", &fresh}, {"later.test.example", &later}});
        pki.write_root(dir / "origin-root.pem");
    }
    ProxyOptions options(const std::string& limits = "") const {
        ProxyOptions o;
        for (auto n : {"cached.test.example", "new.test.example", "later.test.example", "good.test.example"})
            o.hosts[n] = "127.0.0.1";
        o.limits = limits;
        o.ca_service_extra = "health_interval_ms = 300\nrequest_timeout_ms = 2000\nmax_attempts = 2\n";
        return o;
    }
    std::string url(const std::string& host, const std::string& path = "/") const {
        return "https://" + host + ":" + std::to_string(origin->port()) + path;
    }
    std::filesystem::path root() const { return ca.dir / "pki/root-ca.pem"; }
};

}  // namespace

TEST_CASE("ca-service outage: cached names keep working, new names fail closed, service resumes",
          "[proxy][outage]") {
    Env env;
    CaService service(env.ca, work_dir("outage-ca"));
    ProxyNode proxy(env.ca, service.port(), work_dir("outage-node"), env.dir / "origin-root.pem", env.options());
    auto first = curl_via(proxy, env.root(), env.url("cached.test.example"));
    INFO(first.output << proxy.log());
    REQUIRE(first.status == 200);

    service.stop();
    // Within a health interval the node knows; give it a few.
    for (int i = 0; i < 50 && run({"curl", "-s", proxy.mgmt_url("/healthz")}).output.find("unavailable") == std::string::npos; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));

    auto cached = curl_via(proxy, env.root(), env.url("cached.test.example"));
    INFO(cached.output);
    CHECK(cached.status == 200);
    CHECK(cached.body == "hello from cached.test.example\n");

    auto fresh = curl_via(proxy, env.root(), env.url("new.test.example"), {"-v"});
    INFO(fresh.output << proxy.log());
    CHECK(fresh.exit_code != 0);  // no tunnel, and certainly no unverified pass-through
    CHECK_THAT(fresh.output, ContainsSubstring("CONNECT tunnel failed, response 503"));
    CHECK(proxy.last_record("new.test.example")["reason"] == "ca_unavailable");
    {  // The CONNECT answer carries the page that says why.
        RawClient c(proxy.port());
        c.send("CONNECT new.test.example:" + std::to_string(env.origin->port()) + " HTTP/1.1\r\n\r\n");
        bool closed = false;
        auto page = c.read_all(std::chrono::seconds(5), closed);
        CHECK_THAT(page, ContainsSubstring("certificate service is unavailable"));
        CHECK_THAT(page, ContainsSubstring("X-Proxy-Error: ca_unavailable"));
    }

    auto started = std::chrono::steady_clock::now();
    service.start();
    CurlResult resumed;
    while (std::chrono::steady_clock::now() - started < std::chrono::seconds(15)) {
        resumed = curl_via(proxy, env.root(), env.url("new.test.example"));
        if (resumed.status == 200) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    INFO(resumed.output << proxy.log());
    CHECK(resumed.status == 200);
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(10));
    CHECK(curl_via(proxy, env.root(), env.url("cached.test.example")).status == 200);
}

TEST_CASE("malformed requests, garbage and stalled handshakes end cleanly without affecting others",
          "[proxy][robustness]") {
    Env env;
    CaService service(env.ca, work_dir("robust-ca"));
    ProxyNode proxy(env.ca, service.port(), work_dir("robust-node"), env.dir / "origin-root.pem",
                    env.options("client_hello_timeout_ms = 1000\nrequest_timeout_ms = 1000\n"));
    const std::string port = std::to_string(env.origin->port());

    // A slow, healthy download runs alongside all of it.
    auto bulk = std::async(std::launch::async, [&] {
        return run({"curl", "-sS", "--limit-rate", "2M", "-x", proxy.proxy_url(), "--cacert", env.root().string(),
                    "-o", "/dev/null", "-w", "%{size_download}", env.url("good.test.example", "/bytes/8000000")});
    });

    SECTION("malformed CONNECT lines get 400 and a closed connection") {
        const std::vector<std::string> bad = {
            "CONNECT good.test.example HTTP/1.1\r\n\r\n",          // no port
            "CONNECT good.test.example:99999 HTTP/1.1\r\n\r\n",    // port out of range
            "CONNECT  good.test.example:443 HTTP/1.1\r\n\r\n",     // double space
            "CONNECT good test:443 HTTP/1.1\r\n\r\n",              // space in host
            "CONNECT good.test.example:443 HTTP/9.9\r\n\r\n",      // version
            "CONNECT good.test.example:443 HTTP/1.1\r\nBad Header\r\n\r\n",
            "\x01\x02\x03\r\n\r\n",
        };
        for (const auto& b : bad) {
            CAPTURE(b);
            RawClient c(proxy.port());
            c.send(b);
            bool closed = false;
            auto reply = c.read_all(std::chrono::seconds(5), closed);
            CHECK(reply.rfind("HTTP/1.1 400", 0) == 0);
            CHECK(closed);
        }
        RawClient huge(proxy.port());
        huge.send("CONNECT a:1 HTTP/1.1\r\nX: " + std::string(64 * 1024, 'a'));
        bool closed = false;
        CHECK(huge.read_all(std::chrono::seconds(5), closed).rfind("HTTP/1.1 431", 0) == 0);
        CHECK(closed);
    }
    SECTION("garbage instead of a ClientHello") {
        RawClient c(proxy.port());
        c.send("CONNECT good.test.example:" + port + " HTTP/1.1\r\n\r\n");
        c.send(std::string("\x16\x03\x01\x00\x05\xff\xff\xff\xff\xff", 10));  // a record that is no hello
        bool closed = false;
        auto reply = c.read_all(std::chrono::seconds(5), closed);
        CHECK(reply.rfind("HTTP/1.1 200", 0) == 0);
        CHECK(closed);
        RawClient plain(proxy.port());
        // Plaintext HTTP to port 443 (elsewhere it is inspected as plain HTTP: inspection.plain_tunnels).
        plain.send("CONNECT good.test.example:443 HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n");
        auto r2 = plain.read_all(std::chrono::seconds(5), closed);
        CHECK_THAT(r2, ContainsSubstring("not_tls"));
        CHECK(closed);
    }
    SECTION("a client that stalls mid-handshake is timed out") {
        RawClient c(proxy.port());
        c.send("CONNECT good.test.example:" + port + " HTTP/1.1\r\n\r\n");
        c.send(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11));  // half a hello, then silence
        bool closed = false;
        auto started = std::chrono::steady_clock::now();
        c.read_all(std::chrono::seconds(10), closed);
        CHECK(closed);
        CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(5));
        RawClient idle(proxy.port());  // and one that never sends a request head at all
        idle.read_all(std::chrono::seconds(5), closed);
        CHECK(closed);
    }
    // Everything else kept working.
    auto ok = curl_via(proxy, env.root(), env.url("good.test.example"));
    CHECK(ok.status == 200);
    auto b = bulk.get();
    INFO(b.output << proxy.log());
    CHECK(b.exit_code == 0);
    CHECK(b.output == "8000000");
    CHECK(proxy.child().running());
    bool timeout_logged = false, malformed_logged = false;
    for (const auto& r : proxy.records()) {
        timeout_logged |= r["reason"] == "timeout";
        malformed_logged |= r["reason"] == "malformed_request" || r["reason"] == "client_handshake_failed" ||
                            r["reason"] == "not_tls";
    }
    CHECK((timeout_logged || malformed_logged));
}

TEST_CASE("a plain-HTTP refusal reaches a client still sending its body", "[proxy][http]") {
    // Closed with the body unread, the connection would be reset when more of it arrives: the
    // client's next write fails and it never reads the 400 (curl, or a shell, gives up there).
    // The node reads and drops what still comes, for a while, before closing.
    Env env;
    CaService service(env.ca, work_dir("linger-ca"));
    ProxyNode proxy(env.ca, service.port(), work_dir("linger-node"), env.dir / "origin-root.pem", env.options());
    RawClient c(proxy.port());
    REQUIRE(c.send("POST http://good.test.example:" + std::to_string(env.origin->port()) +
                   "/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 40000\r\nTransfer-Encoding: chunked\r\n\r\n"));
    bool sent_all = true;
    for (int i = 0; i < 5 && sent_all; ++i) {  // a slow uploader, still sending after the refusal
        std::this_thread::sleep_for(std::chrono::milliseconds(60));
        sent_all = c.send(std::string(8000, 'x'));
    }
    CHECK(sent_all);
    bool closed = false;
    const std::string answer = c.read_all(std::chrono::seconds(5), closed);
    INFO(answer << proxy.log());
    CHECK(answer.rfind("HTTP/1.1 400 ", 0) == 0);
    CHECK_THAT(answer, ContainsSubstring("framing is refused"));
}

TEST_CASE("the connection limit fits the open-file limit; beyond it clients get 503 at once", "[proxy][limits]") {
    Env env;
    CaService service(env.ca, work_dir("files-ca"));
    auto options = env.options();
    options.launcher = {"prlimit", "--nofile=100:100", "--"};
    ProxyNode proxy(env.ca, service.port(), work_dir("files-node"), env.dir / "origin-root.pem", options);
    INFO(proxy.log());
    // (100 descriptors - 64 kept - 4 for the ca-service connections) / 2 a connection.
    CHECK_THAT(proxy.log(), ContainsSubstring("\"event\":\"max_connections_reduced\""));
    CHECK_THAT(proxy.log(), ContainsSubstring("limits.max_connections is 20000 but the open-file limit of 100 "
                                              "descriptors leaves room for 16"));
    CHECK_THAT(proxy.log(), ContainsSubstring("up to 16 connections at once"));

    auto active_is = [&](int n) {
        const std::string want = "\"active_connections\":" + std::to_string(n) + ",";
        for (int i = 0; i < 100; ++i) {
            if (run({"curl", "-s", "--max-time", "2", proxy.mgmt_url("/healthz")}).output.find(want) != std::string::npos)
                return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        return false;
    };
    std::vector<std::unique_ptr<RawClient>> idle;
    for (int i = 0; i < 16; ++i) idle.push_back(std::make_unique<RawClient>(proxy.port()));
    REQUIRE(active_is(16));
    {  // One more is told at once, rather than left to fail for want of a descriptor.
        RawClient extra(proxy.port());
        bool closed = false;
        const auto page = extra.read_all(std::chrono::seconds(5), closed);
        CHECK(page.starts_with("HTTP/1.1 503 "));
        CHECK(closed);
    }
    idle.clear();
    REQUIRE(active_is(0));
    const auto fetched = curl_via(proxy, env.root(), env.url("good.test.example"));
    INFO(fetched.output);
    CHECK(fetched.status == 200);
}

TEST_CASE("out of descriptors, both listeners pause instead of spinning, and the node says so", "[proxy][limits]") {
    Env env;
    CaService service(env.ca, work_dir("emfile-ca"));
    ProxyNode proxy(env.ca, service.port(), work_dir("emfile-node"), env.dir / "origin-root.pem", env.options());
    const int pid = proxy.child().pid();
    std::size_t held = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) ++held;
    // The soft limit lowered under the running node to what it holds: accept() fails with EMFILE.
    REQUIRE(run({"prlimit", "--pid", std::to_string(pid), "--nofile=" + std::to_string(held) + ":"}).exit_code == 0);
    std::vector<std::unique_ptr<RawClient>> queued;
    for (int i = 0; i < 4; ++i) {
        queued.push_back(std::make_unique<RawClient>(proxy.port()));
        queued.push_back(std::make_unique<RawClient>(proxy.mgmt_port()));
    }
    for (int i = 0; i < 50 && read_file(proxy.connection_log()).find("accept_failed") == std::string::npos; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    INFO(proxy.log());
    CHECK_THAT(read_file(proxy.connection_log()), ContainsSubstring("\"event\":\"accept_failed\""));
    CHECK_THAT(read_file(proxy.connection_log()), ContainsSubstring("Too many open files"));
    const double cpu_before = process_cpu_seconds(pid);
    std::this_thread::sleep_for(std::chrono::seconds(1));
    CHECK(process_cpu_seconds(pid) - cpu_before < 0.3);  // an accept loop retrying at once burns ~1 s a second

    // Room again: the queued clients are taken and new ones served (the ca-service client,
    // which could not open its sockets meanwhile, recovers within its health interval).
    REQUIRE(run({"prlimit", "--pid", std::to_string(pid), "--nofile=20000:"}).exit_code == 0);
    queued.clear();
    CurlResult fetched;
    for (int i = 0; i < 50 && fetched.status != 200; ++i) {
        if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(200));
        fetched = curl_via(proxy, env.root(), env.url("good.test.example"));
    }
    INFO(fetched.output);
    CHECK(fetched.status == 200);
    CHECK(run({"curl", "-s", "--max-time", "5", proxy.mgmt_url("/healthz")}).output.find("\"status\"") !=
          std::string::npos);
}

TEST_CASE("SIGTERM: stop accepting, let open connections finish, exit", "[proxy][shutdown]") {
    Env env;
    CaService service(env.ca, work_dir("drain-ca"));
    ProxyNode proxy(env.ca, service.port(), work_dir("drain-node"), env.dir / "origin-root.pem", env.options());
    auto slow = std::async(std::launch::async, [&] {
        return run({"curl", "-sS", "--limit-rate", "4M", "-x", proxy.proxy_url(), "--cacert", env.root().string(),
                    "-o", "/dev/null", "-w", "%{size_download}", env.url("good.test.example", "/bytes/6000000")});
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    proxy.child().kill(SIGTERM);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    auto refused = run({"curl", "-sS", "--max-time", "5", "-x", proxy.proxy_url(), "--cacert", env.root().string(),
                        env.url("good.test.example")});
    CHECK(refused.exit_code != 0);
    // While it drains, its health check says so (503): a load balancer stops sending clients.
    auto health = run({"curl", "-s", "--max-time", "2", "-w", "\n%{http_code}", proxy.mgmt_url("/healthz")});
    INFO(health.output);
    CHECK(health.output.ends_with("\n503"));
    CHECK_THAT(health.output, ContainsSubstring("\"status\":\"draining\""));
    auto r = slow.get();
    INFO(r.output << proxy.log());
    CHECK(r.exit_code == 0);
    CHECK(r.output == "6000000");
    CHECK(proxy.child().wait(std::chrono::seconds(10)) == 0);
    CHECK_THAT(proxy.log(), ContainsSubstring("\"draining\""));
}

TEST_CASE("a connection cut at the drain deadline still gets its log line", "[proxy][shutdown][log]") {
    Env env;
    CaService service(env.ca, work_dir("cut-ca"));
    ProxyNode proxy(env.ca, service.port(), work_dir("cut-node"), env.dir / "origin-root.pem",
                    env.options("drain_timeout_seconds = 1\n"));
    auto slow = std::async(std::launch::async, [&] {
        return run({"curl", "-sS", "--limit-rate", "200K", "-x", proxy.proxy_url(), "--cacert", env.root().string(),
                    "-o", "/dev/null", env.url("good.test.example", "/bytes/100000000")});
    });
    for (int i = 0; i < 100; ++i) {  // until the download is under way
        if (run({"curl", "-s", proxy.mgmt_url("/metrics")}).output.find("proxy_connections_active 1") != std::string::npos)
            break;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    proxy.child().kill(SIGTERM);
    CHECK(proxy.child().wait(std::chrono::seconds(10)) == 0);
    CHECK(slow.get().exit_code != 0);  // the download was cut
    INFO(proxy.log());
    CHECK_THAT(proxy.log(), ContainsSubstring("1 connections cut at the drain deadline"));
    auto rec = proxy.last_record("good.test.example");
    REQUIRE(rec.is_object());
    CHECK(rec["reason"] == "shutting_down");
    CHECK_THAT(rec.value("detail", ""), ContainsSubstring("drain deadline"));
    CHECK(rec["bytes_upstream_to_client"].get<std::uint64_t>() > 0);
}

namespace {

// Waits (at most 5 s) until `file` holds `text`.
bool file_gets(const std::filesystem::path& file, const std::string& text) {
    for (int i = 0; i < 100; ++i) {
        if (read_file(file).find(text) != std::string::npos) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
}

}  // namespace

TEST_CASE("SIGHUP reopens the connection log by name, as logrotate expects; new logs are 0640", "[proxy][log]") {
    Env env;
    CaService service(env.ca, work_dir("hup-ca"));
    ProxyNode proxy(env.ca, service.port(), work_dir("hup-node"), env.dir / "origin-root.pem", env.options());
    const auto log = proxy.connection_log();
    const auto rotated = std::filesystem::path(log.string() + ".1");

    REQUIRE(curl_via(proxy, env.root(), env.url("good.test.example", "/?first")).status == 200);
    REQUIRE(!proxy.last_record("good.test.example").is_null());
    std::filesystem::rename(log, rotated);  // logrotate's move, then its postrotate signal
    proxy.child().kill(SIGHUP);
    INFO(proxy.log() << read_file(rotated));
    REQUIRE(file_gets(log, "\"log_reopened\""));
    // Client addresses and visited hosts: the file the node creates is not world-readable.
    using std::filesystem::perms;
    CHECK((std::filesystem::status(log).permissions() & (perms::others_all | perms::group_write)) == perms::none);
    REQUIRE(curl_via(proxy, env.root(), env.url("good.test.example", "/?second")).status == 200);
    CHECK(!proxy.last_record("good.test.example").is_null());  // the new file has the second connection
    CHECK(proxy.record_count("good.test.example") == 1);
    CHECK(read_file(rotated).find("\"good.test.example\"") != std::string::npos);  // the first stayed behind
    CHECK(proxy.child().running());

    // A log that cannot be opened again: the node keeps writing to the file it has, says so
    // there, and goes on serving.
    std::filesystem::rename(log, std::filesystem::path(log.string() + ".2"));
    std::filesystem::create_directory(log);  // fopen(..., "a") on a directory fails
    proxy.child().kill(SIGHUP);
    const auto kept = std::filesystem::path(log.string() + ".2");
    CHECK(file_gets(kept, "\"log_reopen_failed\""));
    auto connections_in = [](const std::filesystem::path& f) {
        const std::string text = read_file(f);
        std::size_t n = 0;
        for (auto at = text.find("\"type\":\"connection\""); at != std::string::npos;
             at = text.find("\"type\":\"connection\"", at + 1))
            ++n;
        return n;
    };
    const std::size_t before = connections_in(kept);
    REQUIRE(curl_via(proxy, env.root(), env.url("good.test.example", "/?third")).status == 200);
    bool logged = false;
    for (int i = 0; i < 100 && !logged; ++i) {
        logged = connections_in(kept) == before + 1;
        if (!logged) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    CHECK(logged);
    CHECK(proxy.child().running());
    std::filesystem::remove(log);
}

TEST_CASE("plain HTTP GET is proxied; https:// in absolute form is refused", "[proxy][http]") {
    Env env;
    CaService service(env.ca, work_dir("http-ca"));
    auto site = work_dir("http-site");
    std::ofstream(site / "index.html") << "plain hello\n";
    auto port = free_port();
    Child web({"python3", "-m", "http.server", std::to_string(port), "--bind", "127.0.0.1", "--directory", site.string()},
              site / "server.log");
    ProxyOptions o = env.options();
    o.hosts["plain.test.example"] = "127.0.0.1";
    ProxyNode proxy(env.ca, service.port(), work_dir("http-node"), env.dir / "origin-root.pem", o);
    CurlResult r;
    for (int i = 0; i < 50; ++i) {
        r = curl_via(proxy, env.root(), "http://plain.test.example:" + std::to_string(port) + "/index.html");
        if (r.status == 200) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    INFO(r.output << proxy.log());
    CHECK(r.status == 200);
    CHECK(r.body == "plain hello\n");
    // Earlier attempts (before the web server listened) logged failures; the successful
    // one is logged when its connection ends, possibly just after curl returned.
    auto rec = proxy.last_record("plain.test.example");
    for (int i = 0; i < 100 && rec.value("decision", "") != "proxied"; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        rec = proxy.last_record("plain.test.example");
    }
    CHECK(rec["decision"] == "proxied");
    CHECK(rec["mode"] == "http");
    RawClient c(proxy.port());
    c.send("GET https://good.test.example/ HTTP/1.1\r\nHost: good.test.example\r\n\r\n");
    bool closed = false;
    CHECK(c.read_all(std::chrono::seconds(5), closed).rfind("HTTP/1.1 405", 0) == 0);
}

TEST_CASE("a node renews its own identity before it expires and keeps working on the new one",
          "[proxy][identity]") {
    Env env;
    // Its own CA: the node rewrites its identity files, which the shared CA's nodes must keep.
    const auto ca = TestCa::create({"--node-hours", "1"});
    ServiceOptions service_options;
    service_options.node_identity_lifetime = 7200;
    CaService service(ca, work_dir("renew-ca"), service_options);
    auto options = env.options();
    // Due at once for the 1-hour identity hsm-setup made; not again for the 2-hour renewed one.
    options.ca_service_extra += "renew_before_seconds = 3650\n";
    const auto node_dir = ca.dir / "nodes/node-1";
    const auto before = ossl::load_certificate(node_dir / "node.pem");
    const std::string old_fp = ossl::fingerprint_sha256(*before);
    ProxyNode proxy(ca, service.port(), work_dir("renew-node"), env.dir / "origin-root.pem", options);

    std::string fp = old_fp;
    for (int i = 0; i < 150 && fp == old_fp; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        try {
            fp = ossl::fingerprint_sha256(*ossl::load_certificate(node_dir / "node.pem"));
        } catch (const std::exception&) {
        }
    }
    INFO(proxy.log() << service.log());
    REQUIRE(fp != old_fp);
    // Installed as it should be: owner-only files, no leftovers, a chain that verifies, the
    // same name and a later expiry.
    for (const char* f : {"node.pem", "node.key"})
        CHECK((std::filesystem::status(node_dir / f).permissions() & std::filesystem::perms(077)) ==
              std::filesystem::perms::none);
    CHECK(!std::filesystem::exists(node_dir / "node.key.new"));
    CHECK(!std::filesystem::exists(node_dir / "node.pem.new"));
    auto verified = run({"openssl", "verify", "-CAfile", (ca.dir / "pki/service-ca.pem").string(), "-untrusted",
                         (node_dir / "node.pem").string(), "-purpose", "sslclient", (node_dir / "node.pem").string()});
    CHECK(verified.exit_code == 0);
    const auto after = ossl::load_certificate(node_dir / "node.pem");
    CHECK(ossl::common_name(*after) == "node-1");
    CHECK(ASN1_TIME_compare(X509_get0_notAfter(after.get()), X509_get0_notAfter(before.get())) > 0);

    // Leaves still come, over connections that now authenticate with the new identity.
    auto fresh = curl_via(proxy, ca.dir / "pki/root-ca.pem", env.url("new.test.example"));
    INFO(fresh.output);
    CHECK(fresh.status == 200);
    CHECK_THAT(proxy.log(), ContainsSubstring("renewed the identity of 'node-1'"));
    auto metrics = run({"curl", "-s", proxy.mgmt_url("/metrics")});
    CHECK_THAT(metrics.output, ContainsSubstring("proxy_identity_renewals_total 1"));
    CHECK_THAT(run({"curl", "-s", proxy.mgmt_url("/healthz")}).output, ContainsSubstring("\"identity\":\"ok\""));
    auto shown = run({(kBinDir / "ca-audit").string(), "show", service.audit_dir().string()});
    CHECK_THAT(shown.output, ContainsSubstring("identity_renewed"));
    CHECK_THAT(shown.output, ContainsSubstring(old_fp));

    // A restart starts from the new files.
    REQUIRE(proxy.stop() == 0);
    proxy.start();
    auto later = curl_via(proxy, ca.dir / "pki/root-ca.pem", env.url("later.test.example"));
    INFO(later.output << proxy.log());
    CHECK(later.status == 200);
    proxy.stop();
    service.stop();
    std::filesystem::remove_all(ca.dir);
}
