// HTTP/2 under inspection, end to end: the real proxy-node and ca-service, nginx (Debian)
// with http2 on as the origin, curl --http2 through the proxy trusting only the
// interception root; and a raw HTTP/2 client of the test's own for the attacks no library
// sends (rapid reset, CONTINUATION flood, HPACK bomb, SETTINGS / PING floods, a zero window).

#include "proxy_harness.hpp"
#include "support/bodies.hpp"
#include "support/digest.hpp"
#include "support/nginx_origin.hpp"
#include "support/origin_pki.hpp"
#include "support/origin_server.hpp"

#include "h2/h2_relay.hpp"
#include "inspect/rule_set.hpp"
#include "tls/plain_stream.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <csignal>
#include <fstream>
#include <future>
#include <mutex>
#include <thread>

using namespace testing_support;
using Catch::Matchers::ContainsSubstring;
using Json = nlohmann::json;

namespace {

constexpr const char* kHost = "h2.test.example";

struct Env {
    const TestCa& ca = TestCa::shared();
    OriginPki pki;
    std::filesystem::path dir = make_temp_dir("splitca-h2-env");
    CaService service{ca, make_temp_dir("splitca-h2-ca")};
    OriginCert cert = pki.issue(valid_for({kHost}));
    OriginServer upload_backend{cert};
    NginxOrigin nginx{cert, dir / "nginx", upload_backend.port()};
    std::string one_mb = pattern_body(1 << 20);
    std::string eicar = proxy::inspect::eicar_test_string();

    Env() {
        pki.write_root(dir / "origin-root.pem");
        nginx.put("index.html", "<!DOCTYPE html><html><body><p id=\"t\">hello over h2 from nginx</p></body></html>\n");
        nginx.put("1m.bin", one_mb);
        write_origin_pattern(nginx.root() / "100m.bin", 100ULL << 20);
        nginx.put("1k.bin", pattern_body(1024));
        nginx.put("eicar.txt", eicar);
        // EICAR past hold_bytes: the response streams before the match, so its stream is reset.
        nginx.put("late-eicar.bin", pattern_body(600 * 1024) + eicar);
        std::ofstream(dir / "eicar-upload", std::ios::binary) << std::string(1000, 'u') + eicar;
        std::ofstream(dir / "clean-upload", std::ios::binary) << pattern_body(3 << 20);
    }
    std::filesystem::path root() const { return ca.dir / "pki/root-ca.pem"; }
    std::string url(const std::string& path) const {
        return "https://" + std::string(kHost) + ":" + std::to_string(nginx.port()) + path;
    }
    std::unique_ptr<ProxyNode> proxy(const std::string& name, const std::string& limits = "",
                                     const std::string& inspection = "") const {
        ProxyOptions o;
        o.hosts[kHost] = "127.0.0.1";
        o.limits = limits;
        o.inspection = inspection;
        return std::make_unique<ProxyNode>(ca, service.port(), make_temp_dir("splitca-h2-" + name),
                                           dir / "origin-root.pem", o);
    }
};

Env& env() {
    // The attacks write to connections the node has closed: an error, not a signal.
    static const bool sigpipe_ignored = std::signal(SIGPIPE, SIG_IGN) != SIG_ERR;
    (void)sigpipe_ignored;
    static Env e;
    return e;
}

ProxyNode& main_proxy() {
    static auto p = env().proxy("node");
    return *p;
}

// curl --http2 through the proxy: one line of -w output per URL ("<version> <status>
// <num_connects> <size>"), bodies into files out-0, out-1, ... of `dir`.
RunResult curl_h2(const ProxyNode& p, const std::vector<std::string>& urls, const std::filesystem::path& dir,
                  const std::vector<std::string>& extra = {}) {
    auto& e = env();
    std::vector<std::string> argv = {"curl", "-sS", "--http2", "--max-time", "120", "-x", p.proxy_url(), "--cacert",
                                     e.root().string(), "--capath", "/nonexistent",
                                     "-w", "%{http_version} %{http_code} %{num_connects} %{size_download}\\n"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    if (urls.size() > 1) {
        argv.push_back("--parallel");
        argv.push_back("--parallel-max");
        argv.push_back("100");
    }
    for (std::size_t i = 0; i < urls.size(); ++i) {
        argv.push_back("-o");
        argv.push_back((dir / ("out-" + std::to_string(i))).string());
        argv.push_back(urls[i]);
    }
    return run(argv, {}, std::chrono::seconds(180));
}

// The -w lines of curl_h2's output (curl's progress meter for --parallel left out).
std::vector<std::string> lines(const std::string& s) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start < s.size()) {
        auto end = s.find('\n', start);
        if (end == std::string::npos) end = s.size();
        const std::string l = s.substr(start, end - start);
        if (l.rfind("2 ", 0) == 0 || l.rfind("1.1 ", 0) == 0) out.push_back(l);
        start = end + 1;
    }
    return out;
}

std::string metrics(const ProxyNode& p) { return run({"curl", "-s", p.mgmt_url("/metrics")}).output; }

// ---- a raw HTTP/2 client for the attacks ----

std::string frame(std::uint8_t type, std::uint8_t flags, std::uint32_t stream, const std::string& payload) {
    std::string f;
    const auto n = static_cast<std::uint32_t>(payload.size());
    f.push_back(static_cast<char>(n >> 16));
    f.push_back(static_cast<char>(n >> 8));
    f.push_back(static_cast<char>(n));
    f.push_back(static_cast<char>(type));
    f.push_back(static_cast<char>(flags));
    f.push_back(static_cast<char>((stream >> 24) & 0x7f));
    for (int shift = 16; shift >= 0; shift -= 8) f.push_back(static_cast<char>((stream >> shift) & 0xff));
    return f + payload;
}

constexpr std::uint8_t kData = 0, kHeaders = 1, kRstStream = 3, kSettings = 4, kPing = 6, kGoaway = 7,
                       kContinuation = 9;
constexpr std::uint8_t kEndStream = 1, kEndHeaders = 4;

// An HPACK integer with an n-bit prefix; `first` carries the pattern bits above it.
std::string hpack_int(std::uint8_t first, int bits, std::size_t v) {
    const std::size_t max = (1u << bits) - 1;
    std::string out;
    if (v < max) {
        out.push_back(static_cast<char>(first | v));
        return out;
    }
    out.push_back(static_cast<char>(first | max));
    v -= max;
    while (v >= 128) {
        out.push_back(static_cast<char>((v % 128) + 128));
        v /= 128;
    }
    out.push_back(static_cast<char>(v));
    return out;
}

// A literal field with a new name: not indexed (0x00) or added to the table (0x40).
std::string literal(const std::string& name, const std::string& value, bool index = false) {
    return hpack_int(index ? 0x40 : 0x00, index ? 6 : 4, 0) + hpack_int(0, 7, name.size()) + name +
           hpack_int(0, 7, value.size()) + value;
}

std::string request_block(const std::string& path) {
    return literal(":method", "GET") + literal(":scheme", "https") + literal(":authority", kHost) +
           literal(":path", path);
}

std::string u32(std::uint32_t v) {
    return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

std::string preface(const std::string& settings = "") {
    return "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(kSettings, 0, 0, settings);
}

struct Frame {
    std::uint8_t type = 0, flags = 0;
    std::uint32_t stream = 0;
    std::string payload;
};

std::vector<Frame> frames(const std::string& bytes) {
    std::vector<Frame> out;
    std::size_t pos = 0;
    while (pos + 9 <= bytes.size()) {
        const auto b = [&](std::size_t i) { return static_cast<std::uint8_t>(bytes[pos + i]); };
        const std::size_t len = (std::size_t{b(0)} << 16) | (std::size_t{b(1)} << 8) | b(2);
        if (pos + 9 + len > bytes.size()) break;
        Frame f;
        f.type = b(3);
        f.flags = b(4);
        f.stream = ((std::uint32_t{b(5)} & 0x7f) << 24) | (std::uint32_t{b(6)} << 16) | (std::uint32_t{b(7)} << 8) | b(8);
        f.payload = bytes.substr(pos + 9, len);
        out.push_back(std::move(f));
        pos += 9 + len;
    }
    return out;
}

std::uint32_t goaway_code(const std::string& received) {
    for (const auto& f : frames(received))
        if (f.type == kGoaway && f.payload.size() >= 8) {
            const auto* p = reinterpret_cast<const std::uint8_t*>(f.payload.data()) + 4;
            return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
        }
    return 0xffffffff;  // none
}

bool has_goaway(const std::string& received) { return goaway_code(received) != 0xffffffff; }

std::unique_ptr<TunnelClient> h2_tunnel(const ProxyNode& p) {
    auto t = std::make_unique<TunnelClient>(p.port(), env().nginx.port(), env().root(), kHost, "h2");
    REQUIRE(t->alpn() == "h2");
    return t;
}

// A well-behaved client is served (over h2) while, or right after, an attack runs.
void served_meanwhile(const ProxyNode& p) {
    auto dir = make_temp_dir("splitca-h2-meanwhile");
    auto r = curl_h2(p, {env().url("/1k.bin")}, dir);
    INFO(r.output);
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.output, ContainsSubstring("2 200"));
    std::filesystem::remove_all(dir);
}

}  // namespace

TEST_CASE("HTTP/2 on both sides under inspection: pages and 1 MB and 100 MB bodies byte-identical",
          "[proxy][h2]") {
    auto& e = env();
    auto& p = main_proxy();
    auto dir = make_temp_dir("splitca-h2-bodies");
    for (const std::string path : {"/index.html", "/1m.bin", "/100m.bin"}) {
        const auto before = p.record_count(kHost);
        auto r = curl_h2(p, {e.url(path)}, dir);
        INFO(path << "\n" << r.output << p.log());
        REQUIRE(r.exit_code == 0);
        CHECK(r.output.rfind("2 200 ", 0) == 0);  // HTTP/2 to the client
        const std::string got = read_file(dir / "out-0");
        const std::string want = read_file(e.nginx.root() / path.substr(1));
        CHECK(got.size() == want.size());
        CHECK(sha256_hex(got) == sha256_hex(want));
        auto rec = p.record_after(kHost, before);
        REQUIRE(rec.is_object());
        CHECK(rec["decision"] == "intercepted");
        CHECK(rec.value("inspection", "") == "on");
        CHECK(rec.value("reason", "") == "none");
        CHECK_THAT(rec.value("detail", ""), ContainsSubstring("h2: 1 stream, 0 blocked"));
    }
    const std::string m = metrics(p);
    CHECK(m.find("proxy_http2_connections_total 0\n") == std::string::npos);
    CHECK_THAT(m, ContainsSubstring("proxy_http2_streams_total"));
    std::filesystem::remove_all(dir);
}

TEST_CASE("HTTP/2: 100 concurrent streams on one connection", "[proxy][h2]") {
    auto& e = env();
    auto& p = main_proxy();
    auto dir = make_temp_dir("splitca-h2-streams");
    const auto before = p.record_count(kHost);
    std::vector<std::string> urls;
    for (int i = 0; i < 100; ++i) urls.push_back(e.url(i % 2 ? "/1k.bin" : "/index.html?n=" + std::to_string(i)));
    auto r = curl_h2(p, urls, dir);
    INFO(r.output << p.log());
    REQUIRE(r.exit_code == 0);
    const auto out = lines(r.output);
    REQUIRE(out.size() == 100);
    int connects = 0;
    for (const auto& l : out) {
        CHECK(l.rfind("2 200 ", 0) == 0);
        connects += std::stoi(l.substr(6, l.find(' ', 6) - 6));
    }
    CHECK(connects == 1);  // multiplexed on one connection
    for (int i = 1; i < 100; i += 2) CHECK(read_file(dir / ("out-" + std::to_string(i))) == pattern_body(1024));
    auto rec = p.record_after(kHost, before);
    REQUIRE(rec.is_object());
    CHECK_THAT(rec.value("detail", ""), ContainsSubstring("h2: 100 streams, 0 blocked"));
    std::filesystem::remove_all(dir);
}

TEST_CASE("HTTP/2: EICAR blocked on one stream while a sibling stream completes", "[proxy][h2]") {
    auto& e = env();
    auto& p = main_proxy();
    auto dir = make_temp_dir("splitca-h2-eicar");
    const auto before = p.record_count(kHost);
    auto r = curl_h2(p, {e.url("/eicar.txt"), e.url("/1m.bin")}, dir);
    INFO(r.output << p.log());
    const auto out = lines(r.output);
    REQUIRE(out.size() == 2);
    CHECK(std::count_if(out.begin(), out.end(), [](const std::string& l) { return l.rfind("2 403 ", 0) == 0; }) == 1);
    CHECK(std::count_if(out.begin(), out.end(), [](const std::string& l) { return l.rfind("2 200 ", 0) == 0; }) == 1);
    const std::string page = read_file(dir / "out-0");
    CHECK_THAT(page, ContainsSubstring("Blocked by content inspection"));
    CHECK_THAT(page, ContainsSubstring("eicar"));
    CHECK(page.find(e.eicar) == std::string::npos);
    CHECK(read_file(dir / "out-1") == e.one_mb);
    auto rec = p.record_after(kHost, before);
    REQUIRE(rec.is_object());
    CHECK(rec["decision"] == "blocked");
    CHECK(rec["reason"] == "inspection");
    CHECK(rec.value("rule", "") == "eicar");
    CHECK_THAT(rec.value("detail", ""), ContainsSubstring("h2 response body to GET /eicar.txt matched rule eicar"));
    CHECK_THAT(rec.value("detail", ""), ContainsSubstring("h2: 2 streams, 1 blocked"));
    CHECK(p.log().find(e.eicar) == std::string::npos);
    std::filesystem::remove_all(dir);
}

TEST_CASE("HTTP/2: a response blocked after it started streaming is reset, never completed", "[proxy][h2]") {
    auto& e = env();
    auto& p = main_proxy();
    auto dir = make_temp_dir("splitca-h2-late");
    const auto before = p.record_count(kHost);
    auto r = curl_h2(p, {e.url("/late-eicar.bin")}, dir);
    INFO(r.output << p.log());
    CHECK(r.exit_code != 0);  // curl: HTTP/2 stream was not closed cleanly
    const std::string got = read_file(dir / "out-0");
    CHECK(got.size() < 600 * 1024 + e.eicar.size());
    CHECK(got.find(e.eicar) == std::string::npos);
    auto rec = p.record_after(kHost, before);
    REQUIRE(rec.is_object());
    CHECK(rec.value("rule", "") == "eicar");
    CHECK_THAT(rec.value("detail", ""), ContainsSubstring("stream reset, the response had started"));
    std::filesystem::remove_all(dir);
}

TEST_CASE("HTTP/2 uploads: EICAR blocked with the upload page, a clean 3 MB upload passes", "[proxy][h2]") {
    auto& e = env();
    auto& p = main_proxy();
    auto dir = make_temp_dir("splitca-h2-upload");
    auto before = p.record_count(kHost);
    auto r = curl_h2(p, {e.url("/upload")}, dir, {"--data-binary", "@" + (e.dir / "eicar-upload").string()});
    INFO(r.output << p.log());
    CHECK(r.output.rfind("2 403 ", 0) == 0);
    CHECK_THAT(read_file(dir / "out-0"), ContainsSubstring("Your upload to"));
    auto rec = p.record_after(kHost, before);
    REQUIRE(rec.is_object());
    CHECK(rec.value("rule", "") == "eicar");
    CHECK_THAT(rec.value("detail", ""), ContainsSubstring("h2 request body of POST /upload matched rule eicar"));

    before = p.record_count(kHost);
    r = curl_h2(p, {e.url("/upload")}, dir, {"--data-binary", "@" + (e.dir / "clean-upload").string()});
    INFO(r.output << p.record_after(kHost, before).dump());
    CHECK(r.output.rfind("2 200 ", 0) == 0);
    const std::string clean = read_file(e.dir / "clean-upload");
    CHECK(read_file(dir / "out-0") == "sha256=" + sha256_hex(clean) + " bytes=" + std::to_string(clean.size()) + "\n");
    rec = p.record_after(kHost, before);
    REQUIRE(rec.is_object());
    CHECK(rec.value("reason", "") == "none");
    std::filesystem::remove_all(dir);
}

TEST_CASE("HTTP/2 off (inspection.http2 = false): an h2 client is served over HTTP/1.1", "[proxy][h2]") {
    auto& e = env();
    auto p = e.proxy("h1only", "", "http2 = false\n");
    auto dir = make_temp_dir("splitca-h2-off");
    auto r = curl_h2(*p, {e.url("/index.html")}, dir);
    INFO(r.output);
    CHECK(r.output.rfind("1.1 200 ", 0) == 0);
    std::filesystem::remove_all(dir);
}

TEST_CASE("HTTP/2: an origin that selects h2 but speaks HTTP/1.1 gets its streams reset, logged malformed_http2",
          "[proxy][h2]") {
    auto& e = env();
    auto& p = main_proxy();
    OriginServer liar(e.cert, {}, OriginOptions{1, "h2", false});  // ALPN h2, then HTTP/1.1
    auto dir = make_temp_dir("splitca-h2-liar");
    p.settle();
    const auto before = p.record_count(kHost);
    auto r = curl_h2(p, {"https://" + std::string(kHost) + ":" + std::to_string(liar.port()) + "/anything"}, dir);
    INFO(r.output);
    CHECK(r.exit_code != 0);
    CHECK(r.output.find("2 200") == std::string::npos);
    auto rec = p.record_after(kHost, before);
    REQUIRE(rec.is_object());
    INFO(rec.dump());
    CHECK(rec.value("reason", "") == "malformed_http2");
    CHECK_THAT(rec.value("detail", ""), ContainsSubstring("server HTTP/2"));
    served_meanwhile(p);
    std::filesystem::remove_all(dir);
}

// ---- attacks: the node stays up, its CPU stays bounded, another client is served ----

namespace {

ProxyNode& attack_proxy() {
    // A short idle timeout for the zero-window stall.
    static auto p = env().proxy("attacks", "idle_timeout_seconds = 3\n");
    return *p;
}

struct Attack {
    double cpu = 0;
    std::string received;
    Json record;
};

// Runs `send` on a fresh h2 tunnel, reads what the node answers until it closes (or
// `done` holds), and measures the node's CPU meanwhile.
Attack attack(const std::function<void(TunnelClient&)>& send,
              const std::function<bool(const std::string&)>& done = nullptr) {
    auto& p = attack_proxy();
    const int pid = p.child().pid();
    p.settle();  // earlier connections logged: the next record is this attack's
    const auto before = p.record_count(kHost);
    const double cpu_before = process_cpu_seconds(pid);
    Attack a;
    {
        auto t = h2_tunnel(p);
        send(*t);
        a.received = t->read(done);
    }
    a.cpu = process_cpu_seconds(pid) - cpu_before;
    a.record = p.record_after(kHost, before);
    return a;
}

// What every attack must come to: logged http2_flood, the node's CPU bounded.
void check_flood(const Attack& a) {
    INFO(a.record.dump() << "\ncpu " << a.cpu);
    REQUIRE(a.record.is_object());
    CHECK(a.record.value("reason", "") == "http2_flood");
    CHECK(a.cpu < 3.0);
}

}  // namespace

TEST_CASE("HTTP/2 attacks: rapid reset, CONTINUATION flood, HPACK bomb, SETTINGS and PING floods",
          "[proxy][h2][hostile]") {
    auto& p = attack_proxy();

    SECTION("rapid reset (CVE-2023-44487): GOAWAY ENHANCE_YOUR_CALM, logged http2_flood") {
        auto a = attack([](TunnelClient& t) {
            std::string burst = preface();
            for (std::uint32_t id = 1; id < 2 * 3000; id += 2) {
                burst += frame(kHeaders, kEndStream | kEndHeaders, id, request_block("/1k.bin"));
                burst += frame(kRstStream, 0, id, u32(8));  // CANCEL
                if (burst.size() > 64 * 1024) {
                    if (!t.send(burst)) return;
                    burst.clear();
                }
            }
            t.send(burst);
        });
        INFO(a.record.dump() << "\ncpu " << a.cpu);
        // nghttp2's RST_STREAM rate limit answers INTERNAL_ERROR, the node's own ENHANCE_YOUR_CALM.
        const auto code = goaway_code(a.received);
        CHECK((code == 2 || code == 11));
        check_flood(a);
    }
    SECTION("CONTINUATION flood: the connection ends") {
        auto a = attack([](TunnelClient& t) {
            std::string bytes = preface() + frame(kHeaders, 0, 1, request_block("/1k.bin"));
            for (int i = 0; i < 2000; ++i) bytes += frame(kContinuation, 0, 1, literal("x-filler", std::string(100, 'c')));
            t.send(bytes);
        });
        INFO(a.record.dump());
        CHECK(has_goaway(a.received));
        check_flood(a);
    }
    SECTION("HPACK bomb: a small block that decodes past 64 KiB resets its stream; repeated, GOAWAY") {
        // One 4,000-byte entry in the dynamic table (index 62), then blocks that name it
        // hundreds of times: ~1 MB decoded from ~300 bytes each.
        const std::string first = preface() + frame(kHeaders, kEndStream | kEndHeaders, 1,
                                                    request_block("/1k.bin") + literal("x-bomb", std::string(4000, 'b'), true));
        const auto bomb = [](std::uint32_t id) {
            return frame(kHeaders, kEndStream | kEndHeaders, id, request_block("/1k.bin") + std::string(300, '\xbe'));
        };
        {
            // One bomb: its stream is reset, the connection and its other stream carry on.
            auto t = h2_tunnel(p);
            t->send(first + bomb(3));
            const auto seen = [](const std::string& r) {
                bool reset = false, answered = false;
                for (const auto& f : frames(r)) {
                    reset = reset || (f.type == kRstStream && f.stream == 3);
                    answered = answered || (f.type == kData && f.stream == 1 && (f.flags & kEndStream));
                }
                return reset && answered;
            };
            CHECK(seen(t->read(seen)));
            CHECK_FALSE(has_goaway(t->read(seen)));
        }
        auto a = attack([&](TunnelClient& t) {
            std::string bytes = first;
            for (std::uint32_t id = 3; id < 3 + 2 * 20; id += 2) bytes += bomb(id);
            t.send(bytes);
        });
        INFO(a.record.dump());
        CHECK(has_goaway(a.received));
        check_flood(a);
    }
    SECTION("SETTINGS flood and PING flood: GOAWAY ENHANCE_YOUR_CALM") {
        for (const std::uint8_t type : {kSettings, kPing}) {
            auto a = attack([type](TunnelClient& t) {
                std::string bytes = preface();
                for (int i = 0; i < 20000; ++i) bytes += frame(type, 0, 0, type == kPing ? std::string(8, 'p') : "");
                t.send(bytes);
            });
            INFO(int{type} << " " << a.record.dump());
            CHECK(goaway_code(a.received) == 11);
            check_flood(a);
        }
    }
    served_meanwhile(p);
    auto r = run({"curl", "-s", p.mgmt_url("/healthz")});
    CHECK_THAT(r.output, ContainsSubstring("\"status\""));
}

TEST_CASE("HTTP/2 zero-window stall: bounded memory, ended at the idle timeout though the client pings",
          "[proxy][h2][hostile]") {
    auto& p = attack_proxy();
    const int pid = p.child().pid();
    auto rss_kib = [pid] {
        std::ifstream in("/proc/" + std::to_string(pid) + "/status");
        std::string line;
        while (std::getline(in, line))
            if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
        return 0L;
    };
    const long rss_before = rss_kib();
    auto t = h2_tunnel(p);
    // SETTINGS_INITIAL_WINDOW_SIZE = 0: no DATA may come, ever.
    t->send(preface(std::string("\x00\x04", 2) + u32(0)) + frame(kSettings, 1, 0, "") +
            frame(kHeaders, kEndStream | kEndHeaders, 1, request_block("/100m.bin")));
    const auto start = std::chrono::steady_clock::now();
    std::atomic<bool> stop{false};
    std::thread pinger([&] {
        while (!stop && std::chrono::steady_clock::now() - start < std::chrono::seconds(20)) {
            if (!t->send(frame(kPing, 0, 0, std::string(8, 'k')))) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(300));
        }
    });
    std::this_thread::sleep_for(std::chrono::seconds(1));
    served_meanwhile(p);
    const long grown = rss_kib() - rss_before;
    const std::string received = t->read();  // until the node closes
    const auto took = std::chrono::steady_clock::now() - start;
    stop = true;
    pinger.join();
    INFO("RSS grew " << grown << " KiB; closed after "
                     << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
    CHECK(grown < 32 * 1024);  // the 100 MB response waits upstream, not in the node
    CHECK(t->closed());
    CHECK(took < std::chrono::seconds(10));  // idle_timeout_seconds = 3, PINGs do not renew it
    bool data = false;
    for (const auto& f : frames(received)) data = data || (f.type == kData && !f.payload.empty());
    CHECK_FALSE(data);
    // The connection is logged as the node ends it, which may be just after the client saw the close.
    p.settle();
    Json rec;
    for (int i = 0; i < 100 && !rec.is_object(); ++i) {
        for (const auto& r : p.records())
            if (r.value("host", "") == kHost && r.value("bytes_upstream_to_client", 1) == 0) rec = r;
        if (!rec.is_object()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    INFO("latest record: " << p.last_record(kHost).dump());
    REQUIRE(rec.is_object());
    INFO(rec.dump());
    CHECK(rec.value("reason", "") == "none");
    CHECK_THAT(rec.value("detail", ""), ContainsSubstring("closed after limits.idle_timeout_seconds without traffic"));
}

// ---- the relay's asynchronous verdicts, in process: curl (h2c) -> h2_relay -> nginx (h2c) ----

namespace {

using proxy::inspect::Inspection;
using proxy::inspect::MessageInfo;
using proxy::inspect::Verdict;

// Engine threads, joined before the io_context they post to goes away.
struct EngineThreads {
    std::mutex mu;
    std::vector<std::thread> threads;
    ~EngineThreads() {
        std::lock_guard lock(mu);
        for (auto& t : threads) t.join();
    }
};

// An engine that answers from another thread after `delay` (block for a response to a path
// that contains "block"), or never (`silent`).
class LateInspection final : public Inspection {
public:
    LateInspection(EngineThreads& threads, std::chrono::milliseconds delay, bool silent, bool block)
        : threads_(threads), delay_(delay), silent_(silent), block_(block) {}
    Verdict body(std::span<const std::uint8_t>) override { return Verdict::undecided(); }
    void finish(Completion done) override {
        if (silent_) return;
        std::lock_guard lock(threads_.mu);
        threads_.threads.emplace_back([done = std::move(done), d = delay_, block = block_] {
            std::this_thread::sleep_for(d);
            done(block ? Verdict::block("late-rule") : Verdict::allow());
        });
    }

private:
    EngineThreads& threads_;
    std::chrono::milliseconds delay_;
    bool silent_, block_;
};

class LateInspector final : public proxy::inspect::Inspector {
public:
    LateInspector(EngineThreads& threads, std::chrono::milliseconds delay, bool silent)
        : threads_(threads), delay_(delay), silent_(silent) {}
    std::unique_ptr<Inspection> begin(const MessageInfo& info) const override {
        const bool block = info.direction == proxy::inspect::Direction::response &&
                           info.target.find("block") != std::string_view::npos;
        return std::make_unique<LateInspection>(threads_, delay_, silent_, block);
    }

private:
    EngineThreads& threads_;
    std::chrono::milliseconds delay_;
    bool silent_;
};

// h2_relay on loopback between plain TCP streams: every accepted connection is relayed to
// nginx's h2c port.
class InProcessRelay {
public:
    InProcessRelay(std::uint16_t upstream_port, std::chrono::milliseconds delay, bool silent,
                   std::uint32_t verdict_timeout_ms)
        : upstream_port_(upstream_port), inspector_(engines_, delay, silent) {
        config_.verdict_timeout_ms = verdict_timeout_ms;
        acceptor_.listen();
        asio::co_spawn(io_, serve(), asio::detached);
        thread_ = std::thread([this] { io_.run(); });
    }
    ~InProcessRelay() {
        io_.stop();
        thread_.join();
    }
    std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
    std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port()) + path; }

private:
    asio::awaitable<void> serve() {
        asio::error_code ec;
        asio::ip::tcp::socket client = co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
        if (ec) co_return;
        asio::co_spawn(io_, serve(), asio::detached);  // the next connection
        asio::ip::tcp::socket upstream(io_);
        co_await upstream.async_connect({asio::ip::address_v4::loopback(), upstream_port_},
                                        asio::redirect_error(asio::use_awaitable, ec));
        if (ec) co_return;
        proxy::tls::PlainStream c(client), u(upstream);
        std::uint64_t to_upstream = 0, to_client = 0;
        const proxy::inspect::RelayParams params{config_, inspector_, metrics_, 64 * 1024, kHost,
                                                 to_upstream, to_client, [] {}};
        co_await proxy::h2::h2_relay(c, u, params);
    }

    std::uint16_t upstream_port_;
    asio::io_context io_;
    asio::ip::tcp::acceptor acceptor_{io_, {asio::ip::address_v4::loopback(), 0}};
    proxy::InspectionSection config_;
    proxy::InspectionMetrics metrics_;
    EngineThreads engines_;  // joined once io_ has stopped, before it goes (declared after it)
    LateInspector inspector_;
    std::thread thread_;
};

// nghttp (nghttp2-client) over h2c with prior knowledge: all `urls` on one connection, -v
// (frames and headers on stdout) unless `body` (then the bodies, in order, on stdout).
// (curl 7.88 cannot multiplex with --http2-prior-knowledge: its second stream fails.)
RunResult nghttp(const std::vector<std::string>& urls, bool body = false) {
    std::vector<std::string> argv = {"nghttp", "-t", "30"};
    if (!body) argv.insert(argv.end(), {"-v", "-n"});
    argv.insert(argv.end(), urls.begin(), urls.end());
    return run(argv, {}, std::chrono::seconds(60));
}

int count(const std::string& s, const std::string& what) {
    int n = 0;
    for (auto p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
    return n;
}

}  // namespace

TEST_CASE("HTTP/2 relay: verdicts that come later from another thread, and none (verdict_timeout_ms)",
          "[proxy][h2][verdicts]") {
    auto& e = env();
    auto dir = make_temp_dir("splitca-h2-verdicts");
    e.nginx.put("block-me.txt", "clean, but the engine says no\n");

    SECTION("late allows: each message waits for its verdict, 30 streams at once all complete") {
        InProcessRelay relay(e.nginx.h2c_port(), std::chrono::milliseconds(300), false, 30000);
        const auto start = std::chrono::steady_clock::now();
        auto r = nghttp({relay.url("/1m.bin")}, true);
        const auto took = std::chrono::steady_clock::now() - start;
        CHECK(r.exit_code == 0);
        CHECK(r.output == e.one_mb);
        CHECK(took >= std::chrono::milliseconds(600));  // request and response verdicts, 300 ms each

        std::vector<std::string> urls;
        for (int i = 0; i < 30; ++i) urls.push_back(relay.url("/1k.bin?n=" + std::to_string(i)));
        r = nghttp(urls);
        INFO(r.output);
        CHECK(r.exit_code == 0);
        CHECK(count(r.output, ":status: 200") == 30);
    }
    SECTION("a late block: the block page on that stream, a sibling completes") {
        InProcessRelay relay(e.nginx.h2c_port(), std::chrono::milliseconds(200), false, 30000);
        auto r = nghttp({relay.url("/block-me.txt"), relay.url("/1k.bin")});
        INFO(r.output);
        CHECK(count(r.output, ":status: 403") == 1);
        CHECK(count(r.output, "x-proxy-rule: late-rule") == 1);
        CHECK(count(r.output, ":status: 200") == 1);
        CHECK(nghttp({relay.url("/1k.bin")}, true).output == pattern_body(1024));
    }
    SECTION("an engine that never answers: blocked at verdict_timeout_ms as engine_unavailable (fail closed)") {
        InProcessRelay relay(e.nginx.h2c_port(), std::chrono::milliseconds(0), true, 300);
        const auto start = std::chrono::steady_clock::now();
        auto r = nghttp({relay.url("/index.html")}, true);
        const auto took = std::chrono::steady_clock::now() - start;
        INFO(r.output);
        CHECK_THAT(r.output, ContainsSubstring("inspection engine is unavailable"));
        CHECK(took < std::chrono::seconds(5));
    }
    std::filesystem::remove_all(dir);
}
