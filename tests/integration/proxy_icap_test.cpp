// ICAP (proxy-node/inspect/icap/) end to end: the real proxy-node and ca-service, a real
// engine (c-icap's virus_scan service on clamd, with a signature database the test writes)
// and a misbehaving ICAP server of the tests' own; curl through the node.

#include "proxy_harness.hpp"
#include "support/clamav_icap.hpp"
#include "support/bodies.hpp"
#include "support/digest.hpp"
#include "support/fake_icap.hpp"
#include "support/nginx_origin.hpp"
#include "support/origin_pki.hpp"
#include "support/origin_server.hpp"
#include "support/scripted_origin.hpp"
#include "websocket_peer.hpp"

#include "inspect/rule_set.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <fstream>
#include <thread>

using namespace testing_support;
using Catch::Matchers::ContainsSubstring;
using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kHost = "icap.test.example";

std::filesystem::path work_dir(const std::string& name) { return make_temp_dir("splitca-icap-" + name); }

std::string chunked(const std::string& body, std::size_t piece) {
    std::string out;
    for (std::size_t at = 0; at < body.size(); at += piece) {
        const auto part = body.substr(at, piece);
        char size[32];
        std::snprintf(size, sizeof size, "%zx\r\n", part.size());
        out += size + part + "\r\n";
    }
    return out + "0\r\n\r\n";
}

std::map<std::string, std::string> make_bodies() {
    std::map<std::string, std::string> b;
    b["eicar"] = proxy::inspect::eicar_test_string();
    b["small"] = "a small clean text file\n";
    b["clean1m"] = pattern_body(1 << 20);
    std::string text;
    for (int i = 0; i < 4000; ++i) text += "line " + std::to_string(i) + " of an ordinary document\n";
    b["custom"] = text + kCustomMalware + "\n" + text;
    return b;
}

// /file/<name>?<mode>: cl (Content-Length), chunked (4 KiB chunks) or gzip
// (Content-Encoding: gzip); /big/<bytes>: a pattern body; /upload: the sha256 of what came;
// /echo: the request line, two fields and the body, as the origin got them.
bool serve(const std::map<std::string, std::string>& bodies, const OriginRequest& req, OriginConnection& c) {
    std::string path = req.target, mode = "cl";
    if (auto q = path.find('?'); q != std::string::npos) {
        mode = path.substr(q + 1);
        path.resize(q);
    }
    if (path == "/echo") {
        auto field = [&](const char* name) {
            const auto it = req.headers.find(name);
            return std::string(name) + "=" + (it == req.headers.end() ? "none" : it->second) + "\n";
        };
        return c.write(http_response(req.method + " " + req.target + "\n" + field("x-redacted") +
                                     field("content-encoding") + "body=" + req.body + "\n"));
    }
    if (path.rfind("/upload", 0) == 0)
        return c.write(http_response("sha256=" + sha256_hex(req.body) + " bytes=" + std::to_string(req.body.size()) + "\n"));
    if (path.rfind("/big/", 0) == 0) {
        const std::size_t n = std::stoul(path.substr(5));
        return c.write(http_response(pattern_body(n), "Content-Type: application/octet-stream\r\n"));
    }
    const auto it = bodies.find(path.rfind("/file/", 0) == 0 ? path.substr(6) : "");
    if (it == bodies.end()) return c.write("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    if (mode == "chunked")
        return c.write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n" +
                       chunked(it->second, 4096));
    if (mode == "gzip") return c.write(http_response(gzip(it->second), "Content-Type: text/plain\r\nContent-Encoding: gzip\r\n"));
    return c.write(http_response(it->second, "Content-Type: text/plain\r\n"));
}

struct Env {
    const TestCa& ca = TestCa::shared();
    OriginPki pki;
    OriginCert cert = [this] {
        CertSpec s;
        s.dns_names = {kHost};
        return pki.issue(s);
    }();
    std::map<std::string, std::string> bodies = make_bodies();
    ScriptedOrigin origin{cert, [this](const OriginRequest& r, OriginConnection& c) { return serve(bodies, r, c); }};
    std::filesystem::path dir = work_dir("env");
    CaService service{ca, work_dir("ca")};

    Env() { pki.write_root(dir / "origin-root.pem"); }
    std::filesystem::path root() const { return ca.dir / "pki/root-ca.pem"; }
    std::string url(const std::string& path) const {
        return "https://" + std::string(kHost) + ":" + std::to_string(origin.port()) + path;
    }
    // A node whose integrated EICAR rule is off (so the engine is what finds it), with the
    // given [icap.*] tables.
    std::unique_ptr<ProxyNode> proxy(const std::string& name, const std::string& icap,
                                     const std::string& inspection_extra = "") const {
        ProxyOptions o;
        o.hosts[kHost] = "127.0.0.1";
        o.inspection = "eicar = false\n" + inspection_extra;
        o.sections = icap;
        return std::make_unique<ProxyNode>(ca, service.port(), work_dir(name), dir / "origin-root.pem", o);
    }
};

Env& env() {
    static Env e;
    return e;
}

ClamavIcap& engine() {
    static ClamavIcap c(work_dir("clamav"));
    return c;
}

std::string icap_table(const std::string& name, const std::string& url, const std::string& extra = "") {
    return "[icap." + name + "]\nurl = \"" + url + "\"\n" + extra;
}

// The node in front of the real engine, retrying a down service every 200 ms.
ProxyNode& av_proxy() {
    static auto p = env().proxy("av", icap_table("av", engine().url(), "retry_interval_ms = 200\n"));
    return *p;
}

Json healthz(const ProxyNode& p) {
    auto r = run({"curl", "-s", "--max-time", "5", p.mgmt_url("/healthz")});
    return Json::parse(r.output, nullptr, false);
}

// Waits until /healthz shows the service in `state` (at most 20 s).
bool service_state(const ProxyNode& p, const std::string& name, const std::string& state) {
    const auto deadline = Clock::now() + std::chrono::seconds(20);
    while (Clock::now() < deadline) {
        const auto h = healthz(p);
        if (h.is_object() && h.contains("icap"))
            for (const auto& s : h["icap"])
                if (s.value("service", "") == name && s.value("state", "") == state) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
}

void check_engine_block(const ProxyNode& p, const CurlResult& r, std::size_t before, const std::string& threat) {
    INFO("curl: " << r.output << "\nbody: " << r.body.substr(0, 500));
    CHECK(r.status == 403);
    CHECK_THAT(r.body, ContainsSubstring("VIRUS FOUND"));  // c-icap's own page
    CHECK_THAT(r.body, ContainsSubstring(threat));
    auto rec = p.record_after(kHost, before);
    REQUIRE(rec.is_object());
    CHECK(rec["decision"] == "blocked");
    CHECK(rec["reason"] == "inspection");
    CHECK(rec.value("rule", "") == "icap.av");
    CHECK_THAT(rec.value("detail", ""), ContainsSubstring("threat " + threat));
    CHECK_THAT(rec.value("detail", ""), ContainsSubstring("ISTag CI0001-"));
}

void check_unavailable(const CurlResult& r) {
    INFO("curl: " << r.output << "\nbody: " << r.body.substr(0, 500));
    CHECK(r.status == 403);
    CHECK(header_value(r.headers, "x-proxy-rule") == "engine_unavailable");
    CHECK_THAT(r.body, ContainsSubstring("unavailable"));
}

}  // namespace

TEST_CASE("EICAR downloaded and uploaded is blocked by ClamAV via c-icap: the engine's page, the threat logged",
          "[proxy][icap]") {
    auto& e = env();
    auto& p = av_proxy();
    for (const char* mode : {"cl", "chunked"}) {
        CAPTURE(mode);
        const auto before = p.record_count(kHost);
        auto r = curl_via(p, e.root(), e.url(std::string("/file/eicar?") + mode));
        check_engine_block(p, r, before, kEicarThreat);
    }
    auto dir = work_dir("upload");
    std::ofstream(dir / "eicar.com", std::ios::binary) << proxy::inspect::eicar_test_string();
    const auto before = p.record_count(kHost);
    auto r = curl_via(p, e.root(), e.url("/upload/eicar"), {"--data-binary", "@" + (dir / "eicar.com").string()});
    check_engine_block(p, r, before, kEicarThreat);
    for (const auto& line : e.origin.received()) CHECK_THAT(line, !ContainsSubstring("/upload/eicar complete"));
    // No payload in the logs; the metrics count the engine's blocks.
    CHECK(p.log().find(proxy::inspect::eicar_test_string()) == std::string::npos);
    auto m = run({"curl", "-s", p.mgmt_url("/metrics")});
    CHECK_THAT(m.output, ContainsSubstring("proxy_icap_service_up{service=\"av\"} 1"));
    CHECK_THAT(m.output, ContainsSubstring("proxy_icap_transactions_total{service=\"av\",outcome=\"block\"} 3"));
    CHECK_THAT(m.output, ContainsSubstring("proxy_inspection_blocks_total{rule=\"icap.av\"} 3"));
    std::filesystem::remove_all(dir);
}

TEST_CASE("the test's own ClamAV signature is found in gzip-encoded and chunked bodies", "[proxy][icap]") {
    auto& e = env();
    auto& p = av_proxy();
    for (const char* mode : {"gzip", "chunked", "cl"}) {
        CAPTURE(mode);
        const auto before = p.record_count(kHost);
        auto r = curl_via(p, e.root(), e.url(std::string("/file/custom?") + mode), {"--compressed"});
        check_engine_block(p, r, before, kCustomThreat);
    }
}

TEST_CASE("clean files pass byte-identical through the engine: preview with ieof and 204, 100 Continue, 100 MB",
          "[proxy][icap]") {
    auto& e = env();
    auto& p = av_proxy();
    const auto log_before = engine().access_log().size();
    auto r = curl_via(p, e.root(), e.url("/file/small"));
    CHECK(r.status == 200);
    CHECK(r.body == e.bodies.at("small"));
    for (const char* mode : {"cl", "chunked", "gzip"}) {
        CAPTURE(mode);
        r = curl_via(p, e.root(), e.url(std::string("/file/clean1m?") + mode), {"--compressed"});
        INFO(r.output);
        CHECK(r.status == 200);
        CHECK(r.body == e.bodies.at("clean1m"));
    }
    // An upload goes through REQMOD.
    auto dir = work_dir("clean");
    std::ofstream(dir / "clean.bin", std::ios::binary) << e.bodies.at("clean1m");
    r = curl_via(p, e.root(), e.url("/upload/clean"), {"--data-binary", "@" + (dir / "clean.bin").string()});
    CHECK(r.status == 200);
    CHECK(r.body == "sha256=" + sha256_hex(e.bodies.at("clean1m")) + " bytes=1048576\n");
    // 100 MB, streamed to the engine as it arrives (past hold_bytes the client already gets it).
    const std::size_t big = 100'000'000;
    r = curl_via(p, e.root(), e.url("/big/" + std::to_string(big)));
    INFO(r.output);
    CHECK(r.status == 200);
    CHECK(r.body.size() == big);
    CHECK(sha256_hex(r.body) == sha256_hex(pattern_body(big)));
    // c-icap saw RESPMOD and REQMOD transactions, and answered 204 (clean, no copy back).
    const auto log = engine().access_log().substr(log_before);
    INFO("c-icap access log:\n" << log);
    CHECK_THAT(log, ContainsSubstring("RESPMOD"));
    CHECK_THAT(log, ContainsSubstring("REQMOD"));
    CHECK_THAT(log, ContainsSubstring("204"));
    auto m = run({"curl", "-s", p.mgmt_url("/metrics")});
    CHECK_THAT(m.output, ContainsSubstring("proxy_icap_transactions_total{service=\"av\",outcome=\"allow_204\"}"));
    CHECK_THAT(m.output, !ContainsSubstring("proxy_icap_transactions_total{service=\"av\",outcome=\"allow_204\"} 0\n"));
    std::filesystem::remove_all(dir);
}

TEST_CASE("the engine stopped mid-run: fail-closed pages, then it is used again by itself when restarted",
          "[proxy][icap]") {
    auto& e = env();
    auto& p = av_proxy();
    REQUIRE(service_state(p, "av", "up"));
    engine().stop_icap();
    auto r = curl_via(p, e.root(), e.url("/file/small"));
    check_unavailable(r);
    auto rec = p.last_record(kHost);
    CHECK(rec.value("rule", "") == "engine_unavailable");
    CHECK_THAT(rec.value("detail", ""), ContainsSubstring("icap.av"));
    CHECK(service_state(p, "av", "down"));
    const auto h = healthz(p);
    CHECK(h.value("status", "") == "ok");  // every node shares the engine: not a reason to leave the pool
    r = curl_via(p, e.root(), e.url("/file/small"));
    check_unavailable(r);
    CHECK_THAT(p.log(), ContainsSubstring("icap_service_down"));

    engine().start_icap();
    REQUIRE(service_state(p, "av", "up"));
    r = curl_via(p, e.root(), e.url("/file/small"));
    CHECK(r.status == 200);
    CHECK(r.body == e.bodies.at("small"));
    const auto before = p.record_count(kHost);
    r = curl_via(p, e.root(), e.url("/file/eicar"));
    check_engine_block(p, r, before, kEicarThreat);
}

TEST_CASE("on_error = allow: with the engine unreachable messages pass, logged as uninspected", "[proxy][icap]") {
    auto& e = env();
    const auto nothing = free_port();  // nothing listens there
    auto p = e.proxy("allow", icap_table("lenient", "icap://127.0.0.1:" + std::to_string(nothing) + "/avscan",
                                         "on_error = \"allow\"\nconnect_timeout_ms = 500\n"));
    const auto before = p->record_count(kHost);
    auto r = curl_via(*p, e.root(), e.url("/file/small"));
    CHECK(r.status == 200);
    CHECK(r.body == e.bodies.at("small"));
    auto rec = p->record_after(kHost, before);
    REQUIRE(rec.is_object());
    CHECK(rec["decision"] == "intercepted");
    CHECK_THAT(rec.value("detail", ""), ContainsSubstring("uninspected by icap.lenient"));
    CHECK_THAT(rec.value("detail", ""), ContainsSubstring("service down"));
    const auto h = healthz(*p);
    REQUIRE(h.contains("icap"));
    CHECK(h["icap"][0]["state"] == "down");
    CHECK_THAT(h["icap"][0].value("last_error", ""), ContainsSubstring("cannot connect"));
}

TEST_CASE("an ICAP server that misbehaves gives a clear log line and the on_error outcome, never a hang",
          "[proxy][icap][hostile]") {
    auto& e = env();
    FakeIcap fake(FakeIcap::Behaviour::allow_204);
    auto p = e.proxy("fake", icap_table("fake", fake.url(), "io_timeout_ms = 800\ntransaction_timeout_ms = 1500\n"));
    REQUIRE(service_state(*p, "fake", "up"));

    auto r = curl_via(*p, e.root(), e.url("/file/clean1m"));
    CHECK(r.status == 200);
    CHECK(r.body == e.bodies.at("clean1m"));

    // The engine's own block page, with its threat in the log.
    fake.set(FakeIcap::Behaviour::block_page);
    auto before = p->record_count(kHost);
    r = curl_via(*p, e.root(), e.url("/file/small"));
    CHECK(r.status == 403);
    CHECK_THAT(r.body, ContainsSubstring("blocked by the fake engine"));
    auto rec = p->record_after(kHost, before);
    REQUIRE(rec.is_object());
    CHECK(rec.value("rule", "") == "icap.fake");
    CHECK_THAT(rec.value("detail", ""), ContainsSubstring("ISTag fake-1, threat Fake.Threat"));

    const std::pair<FakeIcap::Behaviour, const char*> cases[] = {
        {FakeIcap::Behaviour::close_mid_answer, "the connection ended inside the encapsulated HTTP heads"},
        {FakeIcap::Behaviour::garbage, "not an ICAP answer"},
        {FakeIcap::Behaviour::stall, "io_timeout_ms"},
        {FakeIcap::Behaviour::lying_encapsulated, "Encapsulated offsets do not match its res-hdr"},
        {FakeIcap::Behaviour::status_500, "ICAP 500"},
    };
    for (const auto& [behaviour, words] : cases) {
        CAPTURE(words);
        fake.set(behaviour);
        before = p->record_count(kHost);
        const auto start = Clock::now();
        r = curl_via(*p, e.root(), e.url("/file/small"));
        const auto took = Clock::now() - start;
        check_unavailable(r);
        CHECK(took < std::chrono::seconds(10));
        rec = p->record_after(kHost, before);
        REQUIRE(rec.is_object());
        CHECK(rec.value("rule", "") == "engine_unavailable");
        CHECK_THAT(rec.value("detail", ""), ContainsSubstring("icap.fake"));
        CHECK_THAT(rec.value("detail", ""), ContainsSubstring(words));
    }
    // It recovers when the engine behaves again; the node never went down.
    fake.set(FakeIcap::Behaviour::allow_204);
    r = curl_via(*p, e.root(), e.url("/file/small"));
    CHECK(r.status == 200);
    CHECK(p->child().running());
    auto m = run({"curl", "-s", p->mgmt_url("/metrics")});
    CHECK_THAT(m.output, ContainsSubstring("proxy_icap_errors_total{service=\"fake\",kind=\"timeout\"} 1"));
    CHECK_THAT(m.output, ContainsSubstring("proxy_icap_errors_total{service=\"fake\",kind=\"status\"} 1"));
}

TEST_CASE("a service whose OPTIONS fail is down: its messages fail closed, and it is asked again", "[proxy][icap]") {
    auto& e = env();
    FakeIcap fake(FakeIcap::Behaviour::options_refused);
    auto p = e.proxy("options", icap_table("fake", fake.url(), "retry_interval_ms = 200\n"));
    auto r = curl_via(*p, e.root(), e.url("/file/small"));
    check_unavailable(r);
    CHECK_THAT(p->log(), ContainsSubstring("OPTIONS answered 404"));
    CHECK(fake.transactions() == 0);
    fake.set(FakeIcap::Behaviour::allow_204);
    REQUIRE(service_state(*p, "fake", "up"));
    r = curl_via(*p, e.root(), e.url("/file/small"));
    CHECK(r.status == 200);
    CHECK(fake.transactions() == 1);  // RESPMOD of the answer: the GET has no body to send in REQMOD
    // send_bodiless = true: every request goes to REQMOD (for a URL-filtering engine).
    auto every = e.proxy("bodiless", icap_table("fake", fake.url(), "send_bodiless = true\n"));
    r = curl_via(*every, e.root(), e.url("/file/small"));
    CHECK(r.status == 200);
    CHECK(fake.transactions() == 3);
}

TEST_CASE("HTTP/2 streams and plain http:// go through the engine too", "[proxy][icap][h2]") {
    auto& e = env();
    auto& p = av_proxy();
    REQUIRE(service_state(p, "av", "up"));
    // nginx over h2 as the origin.
    OriginServer backend(e.cert);
    NginxOrigin nginx(e.cert, work_dir("nginx"), backend.port());
    nginx.put("eicar.txt", proxy::inspect::eicar_test_string());
    nginx.put("clean.txt", e.bodies.at("custom").substr(0, 1000));
    const std::string base = "https://" + std::string(kHost) + ":" + std::to_string(nginx.port());
    auto r = curl_via(p, e.root(), base + "/clean.txt", {"--http2"});
    CHECK(r.status == 200);
    CHECK(r.body == e.bodies.at("custom").substr(0, 1000));
    const auto before = p.record_count(kHost);
    r = curl_via(p, e.root(), base + "/eicar.txt", {"--http2"});
    check_engine_block(p, r, before, kEicarThreat);

    // Plain http:// through the proxy, from a python origin on loopback.
    auto dir = work_dir("plain");
    std::filesystem::create_directories(dir / "www");
    std::ofstream(dir / "www/eicar.com") << proxy::inspect::eicar_test_string();
    std::ofstream(dir / "www/clean.txt") << e.bodies.at("small");
    const auto port = free_port();
    Child origin({"/usr/bin/python3", "-m", "http.server", "--bind", "127.0.0.1", "--directory", (dir / "www").string(),
                  std::to_string(port)},
                 dir / "origin.log");
    const std::string plain = "http://127.0.0.1:" + std::to_string(port);
    for (int i = 0; i < 200 && run({"curl", "-s", "-o", "/dev/null", plain + "/clean.txt"}).exit_code != 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    r = curl_via(p, e.root(), plain + "/clean.txt");
    CHECK(r.status == 200);
    CHECK(r.body == e.bodies.at("small"));
    r = curl_via(p, e.root(), plain + "/eicar.com");
    CHECK(r.status == 403);
    CHECK_THAT(r.body, ContainsSubstring("VIRUS FOUND"));
    std::filesystem::remove_all(dir);
}

TEST_CASE("ICAP over TLS (icaps://): the service's certificate is verified against tls_ca_file", "[proxy][icap][tls]") {
    auto& e = env();
    CertSpec spec;
    spec.ip_addresses = {"127.0.0.1"};
    const auto icap_cert = e.pki.issue(spec);
    auto dir = work_dir("icaps");
    ClamavIcap tls_engine(dir / "engine", &icap_cert);
    const std::string origin_root = (e.dir / "origin-root.pem").string();
    auto p = e.proxy("icaps", icap_table("av", tls_engine.tls_url(), "tls_ca_file = \"" + origin_root + "\"\n"));
    REQUIRE(service_state(*p, "av", "up"));
    auto r = curl_via(*p, e.root(), e.url("/file/small"));
    CHECK(r.status == 200);
    const auto before = p->record_count(kHost);
    r = curl_via(*p, e.root(), e.url("/file/eicar"));
    check_engine_block(*p, r, before, kEicarThreat);
    // A CA that did not issue the service's certificate: the service is down, fail closed.
    auto other = e.proxy("icaps-wrong-ca", icap_table("av", tls_engine.tls_url(),
                                                      "tls_ca_file = \"" + (e.ca.dir / "pki/root-ca.pem").string() + "\"\n"));
    r = curl_via(*other, e.root(), e.url("/file/small"));
    check_unavailable(r);
    const auto h = healthz(*other);
    REQUIRE(h.contains("icap"));
    CHECK_THAT(h["icap"][0].value("last_error", ""), ContainsSubstring("certificate"));
}

TEST_CASE("WebSocket messages go through the engine too: EICAR either way closes the socket with 1008",
          "[proxy][icap][websocket]") {
    auto& e = env();
    auto& p = av_proxy();
    REQUIRE(service_state(p, "av", "up"));
    const auto dir = work_dir("ws");
    WebSocketServer server(&e.cert, dir / "server");
    int files = 0;
    auto payload = [&](const std::string& content) {
        const auto f = dir / ("m" + std::to_string(++files));
        std::ofstream(f, std::ios::binary) << content;
        return f.string();
    };
    auto client = [&](const std::string& path, const std::vector<std::string>& messages) {
        std::vector<std::string> argv = {kPython, websocket_peer_script().string(), "client", std::to_string(p.port()), kHost,
                                         std::to_string(server.port()), e.root().string(), path, "none"};
        argv.insert(argv.end(), messages.begin(), messages.end());
        const auto r = run(argv, {}, std::chrono::seconds(60));
        std::string out = r.output;
        while (!out.empty() && out.back() == '\n') out.pop_back();
        INFO(r.output);
        return Json::parse(out.substr(out.rfind('\n') == std::string::npos ? 0 : out.rfind('\n') + 1), nullptr, false);
    };
    const std::string clean = "an ordinary chat message";
    const std::string eicar = proxy::inspect::eicar_test_string();

    // From the client (REQMOD of a synthetic POST): the clean one is echoed, EICAR never
    // reaches the server.
    auto before = p.record_count(kHost);
    auto j = client("/echo", {"text:" + payload(clean), "binary:" + payload(eicar)});
    REQUIRE(j.is_object());
    INFO(j.dump() << p.log());
    REQUIRE(j["received"].size() == 1);
    CHECK(j["received"][0]["sha256"] == sha256_hex(clean));
    CHECK(j.value("close_code", 0) == 1008);
    auto rec = p.record_after(kHost, before);
    REQUIRE(rec.is_object());
    CHECK(rec.value("rule", "") == "icap.av");
    CHECK_THAT(rec.value("detail", ""), ContainsSubstring("threat " + std::string(kEicarThreat)));
    CHECK_THAT(rec.value("detail", ""), ContainsSubstring("websocket binary message from the client"));
    CHECK(server.received().find(sha256_hex(eicar)) == std::string::npos);

    // From the server (RESPMOD of a synthetic response): the test's own signature.
    std::string hex;
    for (unsigned char c : std::string(kCustomMalware)) {
        char two[3];
        std::snprintf(two, sizeof two, "%02x", c);
        hex += two;
    }
    before = p.record_count(kHost);
    j = client("/push/" + hex, {});
    REQUIRE(j.is_object());
    CHECK(j["received"].empty());
    CHECK(j.value("close_code", 0) == 1008);
    rec = p.record_after(kHost, before);
    REQUIRE(rec.is_object());
    CHECK(rec.value("rule", "") == "icap.av");
    CHECK_THAT(rec.value("detail", ""), ContainsSubstring("threat " + std::string(kCustomThreat)));
    std::filesystem::remove_all(dir);
}

TEST_CASE("a request the engine modified (REQMOD, a redacting DLP engine) goes upstream as modified",
          "[proxy][icap][rewrite]") {
    auto& e = env();
    FakeIcap fake(FakeIcap::Behaviour::redact);
    auto p = e.proxy("redact", icap_table("dlp", fake.url()));
    REQUIRE(service_state(*p, "dlp", "up"));
    const std::string form = "name=alice&secret=42&note=a secret";
    const std::string redacted = "name=alice&[redacted]=42&note=a [redacted]";
    auto before = p->record_count(kHost);
    auto r = curl_via(*p, e.root(), e.url("/echo?x=1"), {"--data-binary", form});
    CHECK(r.status == 200);
    CHECK(r.body == "POST /echo?x=1\nx-redacted=yes\ncontent-encoding=none\nbody=" + redacted + "\n");
    auto rec = p->record_after(kHost, before);
    REQUIRE(rec.is_object());
    CHECK(rec["decision"] == "intercepted");
    CHECK_THAT(rec.value("detail", ""), ContainsSubstring("ISTag fake-1, the engine modified the request"));

    // A chunked upload, and a gzip-encoded one (the engine sees it decoded, and the
    // modified request goes decoded, without Content-Encoding).
    r = curl_via(*p, e.root(), e.url("/echo"), {"-H", "Transfer-Encoding: chunked", "--data-binary", form});
    CHECK(r.body == "POST /echo\nx-redacted=yes\ncontent-encoding=none\nbody=" + redacted + "\n");
    const auto dir = work_dir("redact-gzip");
    std::ofstream(dir / "form.gz", std::ios::binary) << gzip(form);
    r = curl_via(*p, e.root(), e.url("/echo"),
                 {"-H", "Content-Encoding: gzip", "--data-binary", "@" + (dir / "form.gz").string()});
    CHECK(r.body == "POST /echo\nx-redacted=yes\ncontent-encoding=none\nbody=" + redacted + "\n");
    // Keep-alive: two modified requests on one connection, each framed by its new length.
    before = p->record_count(kHost);
    const std::vector<std::string> via = {"-sS", "--max-time", "30", "-x", p->proxy_url(), "--cacert", e.root().string(),
                                          "--capath", "/nonexistent"};
    std::vector<std::string> two = {"curl"};
    two.insert(two.end(), via.begin(), via.end());
    two.insert(two.end(), {"--data-binary", form, e.url("/echo?first"), "--next"});
    two.insert(two.end(), via.begin(), via.end());
    two.insert(two.end(), {"--data-binary", "secret", e.url("/echo?second")});
    const auto both = run(two);
    CHECK(both.output == "POST /echo?first\nx-redacted=yes\ncontent-encoding=none\nbody=" + redacted +
                             "\nPOST /echo?second\nx-redacted=yes\ncontent-encoding=none\nbody=[redacted]\n");
    CHECK(p->record_count(kHost) == before + 1);  // one connection

    // Too late to send it in place of the client's: the client asked for 100 Continue, so
    // its head had gone upstream. Refused, with the engine's rule; never sent unmodified.
    before = p->record_count(kHost);
    r = curl_via(*p, e.root(), e.url("/echo?expect"), {"-H", "Expect: 100-continue", "--data-binary", form});
    CHECK(r.status != 200);
    rec = p->record_after(kHost, before);
    REQUIRE(rec.is_object());
    CHECK(rec.value("rule", "") == "icap.dlp");
    CHECK_THAT(rec.value("detail", ""), ContainsSubstring("cannot be sent in place of the client's"));
    for (const auto& line : e.origin.received()) CHECK_THAT(line, !ContainsSubstring("/echo?expect complete"));

    // The engine moved the request to another server: refused.
    fake.set(FakeIcap::Behaviour::redact_elsewhere);
    before = p->record_count(kHost);
    r = curl_via(*p, e.root(), e.url("/echo?moved"), {"--data-binary", form});
    CHECK(r.status == 403);
    CHECK(header_value(r.headers, "x-proxy-rule") == "icap.dlp");
    rec = p->record_after(kHost, before);
    REQUIRE(rec.is_object());
    CHECK_THAT(rec.value("detail", ""), ContainsSubstring("the engine sent the request to another server"));
    for (const auto& line : e.origin.received()) CHECK_THAT(line, !ContainsSubstring("/echo?moved"));

    // An engine that finds nothing: the client's own bytes go, unchanged.
    fake.set(FakeIcap::Behaviour::allow_204);
    r = curl_via(*p, e.root(), e.url("/echo"), {"--data-binary", form});
    CHECK(r.body == "POST /echo\nx-redacted=none\ncontent-encoding=none\nbody=" + form + "\n");

    // HTTP/2: the stream's request is replaced too (nginx passes the upload to a backend
    // that answers with its digest).
    fake.set(FakeIcap::Behaviour::redact);
    OriginServer backend(e.cert);
    NginxOrigin nginx(e.cert, work_dir("redact-nginx"), backend.port());
    const std::string h2 = "https://" + std::string(kHost) + ":" + std::to_string(nginx.port()) + "/upload";
    r = curl_via(*p, e.root(), h2, {"--http2", "--data-binary", form});
    CHECK(r.status == 200);
    CHECK_THAT(r.body, ContainsSubstring("sha256=" + sha256_hex(redacted) + " bytes=" + std::to_string(redacted.size())));

    auto m = run({"curl", "-s", p->mgmt_url("/metrics")});
    CHECK_THAT(m.output, ContainsSubstring("proxy_icap_transactions_total{service=\"dlp\",outcome=\"rewrite\"} 7"));
    CHECK_THAT(m.output, ContainsSubstring("proxy_inspection_rewritten_total 6"));
    std::filesystem::remove_all(dir);
}

TEST_CASE("[icap] configuration is strict and names the table and key", "[proxy][icap][config]") {
    auto& e = env();
    const std::pair<std::string, std::string> bad[] = {
        {"[icap.av]\nurl = \"http://127.0.0.1:1344/avscan\"\n", "is not an ICAP URL"},
        {"[icap.av]\nurl = \"icap://127.0.0.1:1344\"\n", "names no service"},
        {"[icap.av]\nurl = \"icap://127.0.0.1:99999/avscan\"\n", "port must be 1-65535"},
        {"[icap.av]\nurl = \"icaps://127.0.0.1/avscan\"\n", "tls_ca_file"},
        {"[icap.av]\nurl = \"icap://127.0.0.1/avscan\"\nmode = \"sideways\"\n", "icap.av.mode"},
        {"[icap.av]\nurl = \"icap://127.0.0.1/avscan\"\non_error = \"maybe\"\n", "icap.av.on_error"},
        {"[icap.av]\nurl = \"icap://127.0.0.1/avscan\"\npreview = 10\n", "preview"},
        {"[icap.AV]\nurl = \"icap://127.0.0.1/avscan\"\n", "service name"},
        {"[icap]\nurl = \"icap://127.0.0.1/avscan\"\n", "icap.url"},
    };
    for (const auto& [table, words] : bad) {
        CAPTURE(table);
        auto dir = work_dir("config");
        ProxyOptions o;
        o.sections = table;
        bool threw = false;
        try {
            ProxyNode node(e.ca, e.service.port(), dir, e.dir / "origin-root.pem", o);
        } catch (const std::runtime_error& err) {
            threw = true;
            CHECK_THAT(std::string(err.what()), ContainsSubstring(words));
        }
        CHECK(threw);
        std::filesystem::remove_all(dir);
    }
}
