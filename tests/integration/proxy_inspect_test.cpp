// proxy-node inspection end to end: the real proxy-node and ca-service, an HTTPS origin
// whose responses the test scripts (record splits, chunking, malformed framing), curl and
// an own TLS client (pipelining, uploads written in small TLS records).

#include "proxy_harness.hpp"
#include "support/bodies.hpp"
#include "support/digest.hpp"
#include "support/origin_pki.hpp"
#include "support/origin_server.hpp"
#include "support/scripted_origin.hpp"

#include "config/node_config.hpp"
#include "inspect/rule_set.hpp"
#include "ossl/encoding.hpp"
#include "ossl/handles.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <openssl/err.h>
#include <zlib.h>
#include <zstd.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <thread>

using namespace testing_support;
using Catch::Matchers::ContainsSubstring;
using Json = nlohmann::json;

namespace {

constexpr const char* kHost = "inspect.test.example";

std::filesystem::path work_dir(const std::string& name) {
    return make_temp_dir("splitca-inspect-" + name);
}

// Bodies the origin serves as /file/<name>?<mode>.
std::map<std::string, std::string> make_bodies() {
    const std::string eicar = proxy::inspect::eicar_test_string();
    std::map<std::string, std::string> b;
    b["eicar"] = eicar;
    b["clean1m"] = pattern_body(1 << 20);
    b["eicar-late"] = std::string(100 * 1024, 'a') + eicar;        // past a 4 KiB hold
    // Inside text a coder entropy-codes (alone, zstd would store the 68 bytes as they are).
    std::string text;
    for (std::uint32_t i = 0, x = 7; i < 20000; ++i, x = x * 1103515245u + 12345u)
        text.push_back(static_cast<char>('a' + (x >> 16) % 16));
    b["eicar-in-text"] = text + eicar + text;
    b["eicar-after-2000"] = std::string(2000, 'b') + eicar;        // past a 1000-byte scan limit
    b["eicar-after-300k"] = std::string(300 * 1024, 'c') + eicar;  // past a 200000-byte scan limit
    b["pattern"] = "header bytes " + std::string("\x4d\x5a\x90\x00\x03", 5) + " more";
    b["hashed"] = "a file known to be bad\n" + std::string(5000, 'h');
    b["hashed-plus"] = b["hashed"] + "x";
    return b;
}

std::string zstd(const std::string& in) {
    std::string out(ZSTD_compressBound(in.size()), '\0');
    const std::size_t n = ZSTD_compress(out.data(), out.size(), in.data(), in.size(), 3);
    if (ZSTD_isError(n)) throw std::runtime_error(ZSTD_getErrorName(n));
    out.resize(n);
    return out;
}

// Writes the response for /file/<name>?<mode>: cl (default), chunked, split=N (two TLS
// writes with a pause between, split at body offset N), chunked-split=N, badchunk, close,
// gzip or zstd (that Content-Encoding, Content-Length).
bool serve_file(const std::map<std::string, std::string>& bodies, const OriginRequest& req,
                OriginConnection& c) {
    std::string path = req.target, mode = "cl";
    if (auto q = path.find('?'); q != std::string::npos) {
        mode = path.substr(q + 1);
        path.resize(q);
    }
    if (req.target.rfind("/upload", 0) == 0) {
        std::string body =
            "sha256=" + sha256_hex(req.body) + " bytes=" + std::to_string(req.body.size()) + "\n";
        return c.write(http_response(body));
    }
    if (path.rfind("/hello/", 0) == 0) return c.write(http_response("hello " + path.substr(7) + "\n"));
    if (path.rfind("/events/", 0) == 0) {
        // Server-sent events: one event, a pause, then a second (clean, or the test file).
        auto chunk = [](const std::string& s) {
            char size[32];
            std::snprintf(size, sizeof size, "%zx\r\n", s.size());
            return std::string(size) + s + "\r\n";
        };
        c.write("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nTransfer-Encoding: "
                "chunked\r\n\r\n" +
                chunk("data: first\n\n"));
        c.pause(std::chrono::milliseconds(3000));
        const std::string second = path == "/events/eicar"
                                       ? "data: " + proxy::inspect::eicar_test_string() + "\n\n"
                                       : std::string("data: second\n\n");
        return c.write(chunk(second) + "0\r\n\r\n");
    }
    if (path == "/ws") {
        // An upgrade, then bytes that are not HTTP.
        c.write(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: "
            "Upgrade\r\n\r\n\x81\x05hello");
        c.pause(std::chrono::milliseconds(300));
        return false;
    }
    auto it = bodies.find(path.substr(std::string("/file/").size()));
    if (path.rfind("/file/", 0) != 0 || it == bodies.end()) {
        c.write("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        return true;
    }
    const std::string& body = it->second;
    auto chunk = [](const std::string& s) {
        char size[32];
        std::snprintf(size, sizeof size, "%zx\r\n", s.size());
        return std::string(size) + s + "\r\n";
    };
    if (req.method == "HEAD")
        return c.write(http_response(body).substr(0, http_response(body).size() - body.size()));
    if (mode == "cl") return c.write(http_response(body));
    if (mode.rfind("split=", 0) == 0) {
        const std::size_t at = std::stoul(mode.substr(6));
        const std::string head =
            "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: " +
            std::to_string(body.size()) + "\r\n\r\n";
        c.write(head + body.substr(0, at));
        c.pause(std::chrono::milliseconds(100));
        return c.write(body.substr(at));
    }
    const std::string chunked_head =
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
    if (mode == "chunked") {
        std::string out = chunked_head;
        for (std::size_t off = 0; off < body.size(); off += 1000) out += chunk(body.substr(off, 1000));
        return c.write(out + "0\r\nX-Trailer: yes\r\n\r\n");
    }
    if (mode.rfind("chunked-split=", 0) == 0) {
        const std::size_t at = std::stoul(mode.substr(14));
        c.write(chunked_head + chunk(body.substr(0, at)));
        c.pause(std::chrono::milliseconds(100));
        return c.write(chunk(body.substr(at)) + "0\r\n\r\n");
    }
    if (mode == "badchunk") return c.write(chunked_head + "zz\r\n" + body + "\r\n0\r\n\r\n");
    if (mode == "gzip") return c.write(http_response(gzip(body), "Content-Encoding: gzip\r\n"));
    if (mode == "zstd") return c.write(http_response(zstd(body), "Content-Encoding: zstd\r\n"));
    if (mode == "close") {
        c.write("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body);
        return false;
    }
    return c.write("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
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
    ScriptedOrigin origin{
        cert, [this](const OriginRequest& r, OriginConnection& c) { return serve_file(bodies, r, c); }};
    std::filesystem::path dir = work_dir("env");
    CaService service{ca, work_dir("ca")};

    Env() { pki.write_root(dir / "origin-root.pem"); }
    std::filesystem::path root() const { return ca.dir / "pki/root-ca.pem"; }
    std::string url(const std::string& path) const {
        return "https://" + std::string(kHost) + ":" + std::to_string(origin.port()) + path;
    }
    std::unique_ptr<ProxyNode> proxy(const std::string& name, const std::string& inspection) const {
        ProxyOptions o;
        o.hosts[kHost] = "127.0.0.1";
        o.inspection = inspection;
        return std::make_unique<ProxyNode>(ca, service.port(), work_dir(name), dir / "origin-root.pem", o);
    }
};

Env& env() {
    static Env e;
    return e;
}

// The main proxy: defaults plus a byte pattern and a file hash.
ProxyNode& main_proxy() {
    static auto p = env().proxy("node",
                                "[inspection.patterns]\n\"mz-marker\" = \"hex:4d5a900003\"\n"
                                "[inspection.sha256]\n\"known-bad-file\" = \"" +
                                    sha256_hex(env().bodies.at("hashed")) + "\"\n");
    return *p;
}

// The latest record for kHost after `before` records.
Json record_after(const ProxyNode& p, std::size_t before) {
    p.settle();
    for (int i = 0; i < 100; ++i) {
        auto all = p.records();
        for (std::size_t k = all.size(); k > before; --k)
            if (all[k - 1].value("host", "") == kHost) return all[k - 1];
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return nullptr;
}

void check_blocked(const CurlResult& r, const std::string& rule) {
    INFO("curl: " << r.output);
    CHECK(r.status == 403);
    CHECK(header_value(r.headers, "x-proxy-rule") == rule);
    CHECK(header_value(r.headers, "x-proxy-error") == "inspection");
    CHECK_THAT(r.body, ContainsSubstring("Blocked by content inspection"));
    CHECK_THAT(r.body, ContainsSubstring("<code>" + rule + "</code>"));
}

void check_logged_block(const ProxyNode& p, std::size_t before, const std::string& rule,
                        const std::string& detail_words) {
    auto rec = record_after(p, before);
    REQUIRE(rec.is_object());
    CHECK(rec["decision"] == "blocked");
    CHECK(rec["reason"] == "inspection");
    CHECK(rec.value("rule", "") == rule);
    CHECK(rec.value("inspection", "") == "on");
    CHECK_THAT(rec.value("detail", ""), ContainsSubstring(detail_words));
}

std::string get(const std::string& path, bool close = false) {
    return "GET " + path + " HTTP/1.1\r\nHost: " + kHost + "\r\n" + (close ? "Connection: close\r\n" : "") +
           "\r\n";
}

std::size_t count_of(const std::string& hay, const std::string& needle) {
    std::size_t n = 0;
    for (auto p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
    return n;
}

}  // namespace

TEST_CASE("EICAR in a download is blocked with a 403 page: Content-Length, chunked, read-until-close",
          "[proxy][inspect]") {
    auto& e = env();
    auto& p = main_proxy();
    for (const char* mode : {"cl", "chunked", "close"}) {
        CAPTURE(mode);
        const auto before = p.records().size();
        auto r = curl_via(p, e.root(), e.url(std::string("/file/eicar?") + mode));
        INFO(r.output << p.log());
        check_blocked(r, "eicar");
        check_logged_block(p, before, "eicar", "response body to GET /file/eicar");
    }
    // Never any payload in the logs.
    CHECK(p.log().find(proxy::inspect::eicar_test_string()) == std::string::npos);
    auto m = run({"curl", "-s", p.mgmt_url("/metrics")});
    CHECK_THAT(m.output, ContainsSubstring("proxy_inspection_blocks_total{rule=\"eicar\"} 3"));
    CHECK_THAT(m.output, ContainsSubstring("proxy_refusals_total{reason=\"inspection\"} 3"));
}

TEST_CASE("plain http:// is inspected too: EICAR blocked both ways, clean files byte-identical",
          "[proxy][inspect][http]") {
    auto& e = env();
    auto& p = main_proxy();
    auto dir = work_dir("plain");
    std::filesystem::create_directories(dir / "www");
    std::ofstream(dir / "www/eicar.com") << proxy::inspect::eicar_test_string();
    const std::string clean = pattern_body(1 << 20);
    std::ofstream(dir / "www/clean.bin") << clean;
    std::ofstream(dir / "eicar-upload.txt") << "form=" << proxy::inspect::eicar_test_string();
    const std::string clean_upload = pattern_body(100000);
    std::ofstream(dir / "clean-upload.bin") << clean_upload;
    // A plain HTTP origin that serves files and records each upload it receives.
    std::ofstream(dir / "origin.py") << R"PY(
import hashlib, http.server, sys
port, root, log = int(sys.argv[1]), sys.argv[2], sys.argv[3]
class Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *a, **k):
        super().__init__(*a, directory=root, **k)
    def read_body(self):
        if self.headers.get('Transfer-Encoding', '').lower() == 'chunked':
            body = b''
            try:
                while True:
                    size = int(self.rfile.readline().split(b';')[0].strip(), 16)
                    if size == 0:
                        while self.rfile.readline() not in (b'\r\n', b''):
                            pass
                        return body, 'complete chunked'
                    body += self.rfile.read(size)
                    self.rfile.readline()
            except ValueError:
                return body, 'incomplete'
        want = int(self.headers.get('Content-Length', '0'))
        body = self.rfile.read(want)
        return body, 'complete' if len(body) == want else 'incomplete'
    def do_POST(self):
        body, state = self.read_body()
        with open(log, 'a') as f:
            f.write('POST %s bytes=%d %s\n' % (self.path, len(body), state))
        out = ('sha256=%s bytes=%d\n' % (hashlib.sha256(body).hexdigest(), len(body))).encode()
        self.send_response(200)
        self.send_header('Content-Length', str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(('127.0.0.1', port), Handler).serve_forever()
)PY";
    const auto port = free_port();
    Child web({"python3", (dir / "origin.py").string(), std::to_string(port), (dir / "www").string(),
               (dir / "uploads.log").string()},
              dir / "origin.log");
    const std::string base = "http://" + std::string(kHost) + ":" + std::to_string(port);

    CurlResult ok;
    for (int i = 0; i < 50 && ok.status != 200; ++i) {
        ok = curl_via(p, e.root(), base + "/clean.bin");
        if (ok.status != 200) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    INFO(ok.output << p.log());
    REQUIRE(ok.status == 200);
    CHECK(ok.body.size() == clean.size());
    CHECK(sha256_hex(ok.body) == sha256_hex(clean));

    auto before = p.records().size();
    auto r = curl_via(p, e.root(), base + "/eicar.com");
    INFO(r.output << p.log());
    check_blocked(r, "eicar");
    check_logged_block(p, before, "eicar", "response body to GET /eicar.com");
    CHECK(record_after(p, before).value("mode", "") == "http");

    before = p.records().size();
    auto up = curl_via(p, e.root(), base + "/upload", {"--data-binary", "@" + (dir / "eicar-upload.txt").string()});
    INFO(up.output << p.log());
    check_blocked(up, "eicar");
    CHECK_THAT(up.body, ContainsSubstring("Your upload"));
    check_logged_block(p, before, "eicar", "request body of POST /upload");

    auto good = curl_via(p, e.root(), base + "/upload", {"--data-binary", "@" + (dir / "clean-upload.bin").string()});
    CHECK(good.status == 200);
    CHECK(good.body == "sha256=" + sha256_hex(clean_upload) + " bytes=100000\n");

    // Chunked request bodies too: the test file is blocked, a clean one arrives whole.
    const std::vector<std::string> chunked = {"-H", "Transfer-Encoding: chunked", "--data-binary"};
    before = p.records().size();
    auto up_chunked = curl_via(p, e.root(), base + "/upload", {chunked[0], chunked[1], chunked[2], "@" + (dir / "eicar-upload.txt").string()});
    INFO(up_chunked.output << p.log());
    check_blocked(up_chunked, "eicar");
    check_logged_block(p, before, "eicar", "request body of POST /upload");
    auto good_chunked =
        curl_via(p, e.root(), base + "/upload", {chunked[0], chunked[1], chunked[2], "@" + (dir / "clean-upload.bin").string()});
    CHECK(good_chunked.status == 200);
    CHECK(good_chunked.body == "sha256=" + sha256_hex(clean_upload) + " bytes=100000\n");

    // The server saw the clean uploads whole and the EICAR ones never complete.
    const std::string uploads = read_file(dir / "uploads.log");
    INFO(uploads);
    CHECK(count_of(uploads, "bytes=100000 complete\n") == 1);
    CHECK(count_of(uploads, "bytes=100000 complete chunked\n") == 1);
    CHECK(count_of(uploads, "complete") - count_of(uploads, "incomplete") == 2);
    CHECK(p.log().find(proxy::inspect::eicar_test_string()) == std::string::npos);

    // Without inspection, the same framing rules: chunked relayed as sent, ambiguous framing
    // refused before anything reaches the server.
    auto off = e.proxy("plain-off", "enabled = false\n");
    auto relayed =
        curl_via(*off, e.root(), base + "/upload", {chunked[0], chunked[1], chunked[2], "@" + (dir / "clean-upload.bin").string()});
    INFO(relayed.output << off->log());
    CHECK(relayed.status == 200);
    CHECK(relayed.body == "sha256=" + sha256_hex(clean_upload) + " bytes=100000\n");
    auto smuggle = sh("exec 3<>/dev/tcp/127.0.0.1/" + std::to_string(off->port()) +
                      "; printf 'POST " + base +
                      "/upload HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: 4\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n0\\r\\n\\r\\n' >&3; "
                      "timeout 10 cat <&3");
    INFO(smuggle.output);
    CHECK(smuggle.output.rfind("HTTP/1.1 400", 0) == 0);
    CHECK_THAT(smuggle.output, ContainsSubstring("framing is refused"));
    CHECK(count_of(read_file(dir / "uploads.log"), "POST") == count_of(uploads, "POST") + 1);  // only the relayed one
    std::filesystem::remove_all(dir);
}

TEST_CASE("gzip- and zstd-encoded downloads are scanned decoded and passed on as sent", "[proxy][inspect][encoding]") {
    auto& e = env();
    auto& p = main_proxy();
    for (const std::string coding : {"gzip", "zstd"}) {
        INFO(coding);
        const auto before = p.records().size();
        // Not found in the bytes as sent: only decoding shows it.
        const std::string encoded = coding == "gzip" ? gzip(e.bodies.at("eicar-in-text")) : zstd(e.bodies.at("eicar-in-text"));
        REQUIRE(encoded.find(proxy::inspect::eicar_test_string()) == std::string::npos);
        auto r = curl_via(p, e.root(), e.url("/file/eicar-in-text?" + coding));
        INFO(r.output << p.log());
        check_blocked(r, "eicar");
        check_logged_block(p, before, "eicar", "response body to GET /file/eicar-in-text");
        // A clean file arrives still encoded, byte for byte as the origin sent it.
        auto clean = curl_via(p, e.root(), e.url("/file/clean1m?" + coding));
        CHECK(clean.status == 200);
        CHECK(header_value(clean.headers, "content-encoding") == coding);
        CHECK(clean.body == (coding == "gzip" ? gzip(e.bodies.at("clean1m")) : zstd(e.bodies.at("clean1m"))));
    }
}

TEST_CASE("EICAR split across TLS records is still found, at every split region", "[proxy][inspect]") {
    auto& e = env();
    auto& p = main_proxy();
    for (int at : {1, 2, 17, 34, 50, 67}) {
        for (const char* mode : {"split=", "chunked-split="}) {
            CAPTURE(at, mode);
            auto r = curl_via(p, e.root(), e.url(std::string("/file/eicar?") + mode + std::to_string(at)));
            INFO(r.output);
            check_blocked(r, "eicar");
        }
    }
    // Uploads written by the client in small TLS records, cut inside the string.
    const std::string eicar = proxy::inspect::eicar_test_string();
    for (std::size_t at : {1UL, 33UL, 67UL}) {
        CAPTURE(at);
        TunnelClient c(p.port(), e.origin.port(), e.root(), kHost);
        c.send("POST /upload/split HTTP/1.1\r\nHost: " + std::string(kHost) +
               "\r\nContent-Length: " + std::to_string(eicar.size()) + "\r\n\r\n");
        c.send(eicar.substr(0, at));
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        c.send(eicar.substr(at));
        auto got = c.read();
        CHECK(got.rfind("HTTP/1.1 403 Forbidden", 0) == 0);
        CHECK_THAT(got, ContainsSubstring("X-Proxy-Rule: eicar"));
    }
    for (const auto& line : e.origin.received())
        CHECK(line.find("/upload/split complete") == std::string::npos);
}

TEST_CASE("EICAR in an upload is blocked and never reaches the server: Content-Length and chunked",
          "[proxy][inspect]") {
    auto& e = env();
    auto& p = main_proxy();
    auto dir = work_dir("upload");
    std::ofstream(dir / "eicar.com") << proxy::inspect::eicar_test_string();
    std::ofstream(dir / "big-eicar.bin")
        << std::string(100000, 'u') << proxy::inspect::eicar_test_string() << "tail";
    // Over 1 MiB: curl sends Expect: 100-continue, so the head goes upstream at once and the
    // body streams past hold_bytes; the block then cuts the server off and still pages.
    std::ofstream(dir / "huge-eicar.bin")
        << std::string(1500000, 'u') << proxy::inspect::eicar_test_string() << std::string(600000, 'v');
    struct Case {
        std::string name;
        std::vector<std::string> args;
    };
    const std::vector<Case> cases = {
        {"content-length", {"--data-binary", "@" + (dir / "eicar.com").string()}},
        {"chunked", {"-T", (dir / "eicar.com").string(), "-H", "Transfer-Encoding: chunked"}},
        {"content-length-100k", {"--data-binary", "@" + (dir / "big-eicar.bin").string()}},
        {"chunked-100k", {"-T", (dir / "big-eicar.bin").string(), "-H", "Transfer-Encoding: chunked"}},
        {"content-length-2m-expect", {"--data-binary", "@" + (dir / "huge-eicar.bin").string()}},
    };
    for (const auto& c : cases) {
        CAPTURE(c.name);
        const auto before = p.records().size();
        auto r = curl_via(p, e.root(), e.url("/upload/" + c.name), c.args);
        INFO(r.output << p.log());
        check_blocked(r, "eicar");
        CHECK_THAT(r.body, ContainsSubstring("Your upload"));
        check_logged_block(p, before, "eicar", "request body of");
    }
    for (const auto& line : e.origin.received()) {
        INFO(line);
        CHECK(line.find(" complete ") == std::string::npos);
    }
    std::filesystem::remove_all(dir);
}

TEST_CASE("a clean 1 MB file passes byte-identical both ways, Content-Length and chunked",
          "[proxy][inspect]") {
    auto& e = env();
    auto& p = main_proxy();
    const std::string& clean = e.bodies.at("clean1m");
    for (const char* mode : {"cl", "chunked", "split=500000"}) {
        CAPTURE(mode);
        auto r = curl_via(p, e.root(), e.url(std::string("/file/clean1m?") + mode));
        INFO(r.output);
        CHECK(r.status == 200);
        CHECK(r.body.size() == clean.size());
        CHECK(r.body == clean);
    }
    auto dir = work_dir("clean");
    std::ofstream(dir / "clean.bin", std::ios::binary) << clean;
    for (bool chunked : {false, true}) {
        CAPTURE(chunked);
        std::vector<std::string> args =
            chunked ? std::vector<std::string>{"-T", (dir / "clean.bin").string(), "-H",
                                               "Transfer-Encoding: chunked"}
                    : std::vector<std::string>{"--data-binary", "@" + (dir / "clean.bin").string()};
        auto r = curl_via(p, e.root(), e.url("/upload/clean"), args);
        INFO(r.output);
        CHECK(r.status == 200);
        CHECK(r.body == "sha256=" + sha256_hex(clean) + " bytes=" + std::to_string(clean.size()) + "\n");
    }
    auto rec = p.last_record(kHost);
    CHECK(rec["decision"] == "intercepted");
    std::filesystem::remove_all(dir);
}

TEST_CASE("keep-alive and pipelined requests on one connection; a block mid-pipeline ends it cleanly",
          "[proxy][inspect]") {
    auto& e = env();
    auto& p = main_proxy();
    {
        TunnelClient c(p.port(), e.origin.port(), e.root(), kHost);
        c.send(get("/hello/1"));
        c.read([](const std::string& s) { return s.find("hello 1\n") != std::string::npos; });
        c.send(get("/hello/2") + get("/hello/3") + "HEAD /file/eicar HTTP/1.1\r\nHost: x\r\n\r\n" +
               get("/hello/4", true));
        auto got = c.read();
        CHECK(count_of(got, "HTTP/1.1 200 OK") == 5);  // hello/1 read before, then four more
        const auto p1 = got.find("hello 1"), p2 = got.find("hello 2"), p3 = got.find("hello 3"),
                   p4 = got.find("hello 4");
        CHECK((p1 < p2 && p2 < p3 && p3 < p4 && p4 != std::string::npos));
        CHECK(c.closed());
    }
    {
        TunnelClient c(p.port(), e.origin.port(), e.root(), kHost);
        c.send(get("/hello/5") + get("/file/eicar?chunked") + get("/hello/6"));
        auto got = c.read();
        INFO(got);
        CHECK_THAT(got, ContainsSubstring("hello 5"));
        CHECK(got.find("hello 5") < got.find("HTTP/1.1 403 Forbidden"));
        CHECK(got.find("hello 6") == std::string::npos);
        CHECK(c.closed());
    }
    {
        // An upload blocked behind a pipelined download: the download completes, then the page.
        TunnelClient c(p.port(), e.origin.port(), e.root(), kHost);
        const std::string eicar = proxy::inspect::eicar_test_string();
        c.send(get("/file/clean1m") + "PUT /upload/pipelined HTTP/1.1\r\nHost: x\r\nContent-Length: " +
               std::to_string(eicar.size()) + "\r\n\r\n" + eicar);
        auto got = c.read();
        CHECK(got.size() > (1U << 20));
        const auto page = got.find("HTTP/1.1 403 Forbidden");
        CHECK(page != std::string::npos);
        CHECK(page > (1U << 20));
        CHECK(c.closed());
        CHECK_THAT(got, ContainsSubstring("X-Proxy-Rule: eicar"));
    }
}

TEST_CASE("configured byte pattern and SHA-256 rules block by name; a near miss passes", "[proxy][inspect]") {
    auto& e = env();
    auto& p = main_proxy();
    const auto before = p.records().size();
    check_blocked(curl_via(p, e.root(), e.url("/file/pattern?chunked")), "mz-marker");
    check_logged_block(p, before, "mz-marker", "GET /file/pattern");
    check_blocked(curl_via(p, e.root(), e.url("/file/hashed?chunked")), "known-bad-file");
    check_blocked(curl_via(p, e.root(), e.url("/file/hashed?split=100")), "known-bad-file");
    auto miss = curl_via(p, e.root(), e.url("/file/hashed-plus"));
    CHECK(miss.status == 200);
    CHECK(miss.body == e.bodies.at("hashed-plus"));
    auto dir = work_dir("hash");
    std::ofstream(dir / "bad.bin") << e.bodies.at("hashed");
    check_blocked(
        curl_via(p, e.root(), e.url("/upload/hashed"), {"--data-binary", "@" + (dir / "bad.bin").string()}),
        "known-bad-file");
    std::filesystem::remove_all(dir);
}

TEST_CASE("past hold_bytes a late block resets the connection: the client never has the whole file",
          "[proxy][inspect]") {
    auto& e = env();
    auto p = e.proxy("late", "hold_bytes = 4096\nmax_scan_bytes = 200000\n");
    // This node serves only this test: its n-th connection's line is its n-th record. A line
    // is written when the proxy finishes, which can be just after curl has returned.
    std::size_t made = 0;
    auto logged = [&] {
        ++made;
        for (int i = 0; i < 100 && p->records().size() < made; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        REQUIRE(p->records().size() == made);
    };
    const std::string& full = e.bodies.at("eicar-late");
    for (const char* mode : {"cl", "chunked"}) {
        CAPTURE(mode);
        const auto before = made;
        auto r = curl_via(*p, e.root(), e.url(std::string("/file/eicar-late?") + mode));
        INFO(r.output);
        CHECK(r.exit_code != 0);
        CHECK(r.body.size() < full.size());
        CHECK(r.body.find(proxy::inspect::eicar_test_string()) == std::string::npos);
        logged();
        check_logged_block(*p, before, "eicar", "connection reset");
    }
    // Over max_scan_bytes with the default over_limit = "allow": passes, logged.
    auto r = curl_via(*p, e.root(), e.url("/file/eicar-after-300k"));
    CHECK(r.status == 200);
    CHECK(r.body == e.bodies.at("eicar-after-300k"));
    logged();
    auto rec = p->last_record(kHost);
    CHECK(rec["decision"] == "intercepted");
    CHECK_THAT(rec.value("detail", ""), ContainsSubstring("over max_scan_bytes (200000), rest not scanned"));
    auto m = run({"curl", "-s", p->mgmt_url("/metrics")});
    CHECK_THAT(m.output, ContainsSubstring("proxy_inspection_over_limit_total 1"));
}

TEST_CASE("server-sent events pass as they arrive and are still scanned; stream_types = [] holds them",
          "[proxy][inspect][stream]") {
    using std::chrono::steady_clock;
    auto& e = env();
    auto& p = main_proxy();
    auto has = [](const char* what) { return [what](const std::string& s) { return s.find(what) != std::string::npos; }; };
    const auto at_start = p.records().size();
    {
        TunnelClient c(p.port(), e.origin.port(), e.root(), kHost);
        const auto start = steady_clock::now();
        c.send(get("/events/clean"));
        auto got = c.read(has("data: first"));
        INFO(got);
        CHECK_THAT(got, ContainsSubstring("data: first"));
        CHECK(steady_clock::now() - start < std::chrono::milliseconds(2500));  // the origin pauses 3 s after it
        got = c.read(has("data: second"));
        CHECK_THAT(got, ContainsSubstring("data: second"));
    }
    {
        // The test file in a later event: the stream is cut, the client never gets it.
        REQUIRE(record_after(p, at_start).is_object());  // the first stream's line is out
        const auto before = p.records().size();
        TunnelClient c(p.port(), e.origin.port(), e.root(), kHost);
        c.send(get("/events/eicar"));
        auto got = c.read();
        INFO(got);
        CHECK_THAT(got, ContainsSubstring("data: first"));
        CHECK(got.find(proxy::inspect::eicar_test_string()) == std::string::npos);
        CHECK(c.closed());
        check_logged_block(p, before, "eicar", "connection reset");
    }
    {
        // Without the stream type the message is held: its first event waits for its end.
        auto held = e.proxy("nostream", "stream_types = []\n");
        TunnelClient c(held->port(), e.origin.port(), e.root(), kHost);
        const auto start = steady_clock::now();
        c.send(get("/events/clean"));
        auto got = c.read(has("data: first"));
        CHECK_THAT(got, ContainsSubstring("data: first"));
        CHECK(steady_clock::now() - start > std::chrono::milliseconds(2500));
    }
}

TEST_CASE("over_limit = block refuses bodies longer than max_scan_bytes", "[proxy][inspect]") {
    auto& e = env();
    auto p = e.proxy("overlimit", "max_scan_bytes = 1000\nover_limit = \"block\"\n");
    check_blocked(curl_via(*p, e.root(), e.url("/file/eicar-after-2000")), "scan_limit");
    auto small = curl_via(*p, e.root(), e.url("/file/hashed-plus?chunked"));
    CHECK(small.status == 403);  // 5 KB > 1000 bytes
    auto tiny = curl_via(*p, e.root(), e.url("/hello/1"));
    CHECK(tiny.status == 200);
}

TEST_CASE("malformed HTTP and non-HTTP in the tunnel end the connection with a reason", "[proxy][inspect]") {
    auto& e = env();
    auto& p = main_proxy();
    auto before = p.records().size();
    auto r = curl_via(p, e.root(), e.url("/file/eicar?badchunk"));
    CHECK(r.exit_code != 0);
    CHECK(r.body.empty());
    auto rec = record_after(p, before);
    REQUIRE(rec.is_object());
    CHECK(rec["decision"] == "blocked");
    CHECK(rec["reason"] == "malformed_http");
    CHECK_THAT(rec.value("detail", ""), ContainsSubstring("invalid chunk size"));

    before = p.records().size();
    {
        TunnelClient c(p.port(), e.origin.port(), e.root(), kHost);
        c.send("SSH-2.0-OpenSSH_9.2p1 Debian\r\n");
        auto got = c.read();
        CHECK(got.empty());
        CHECK(c.closed());
    }
    rec = record_after(p, before);
    REQUIRE(rec.is_object());
    CHECK(rec["reason"] == "not_http");

    // A request smuggling attempt (both Content-Length and chunked) is refused.
    before = p.records().size();
    {
        TunnelClient c(p.port(), e.origin.port(), e.root(), kHost);
        c.send(
            "POST /upload/smuggle HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: "
            "chunked\r\n\r\n0\r\n\r\n");
        c.read();
        CHECK(c.closed());
    }
    rec = record_after(p, before);
    REQUIRE(rec.is_object());
    CHECK(rec["reason"] == "malformed_http");
    CHECK_THAT(rec.value("detail", ""), ContainsSubstring("smuggling"));
    for (const auto& line : e.origin.received()) CHECK(line.find("/upload/smuggle") == std::string::npos);
}

TEST_CASE("non_http = tunnel relays other protocols uninspected, logged", "[proxy][inspect]") {
    auto& e = env();
    auto p = e.proxy("tunnel", "non_http = \"tunnel\"\n");
    const auto before = p->records().size();
    {
        TunnelClient c(p->port(), e.origin.port(), e.root(), kHost);
        // Not HTTP; the scripted origin answers nothing to it and closes when we do.
        c.send(std::string("\x01\x02binary", 8));
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    auto rec = record_after(*p, before);
    REQUIRE(rec.is_object());
    CHECK(rec["decision"] == "intercepted");
    CHECK_THAT(rec.value("detail", ""), ContainsSubstring("not inspected"));
    CHECK(rec.value("inspection", "") == "off");  // nothing of it went through the inspector
    CHECK_THAT(run({"curl", "-s", p->mgmt_url("/metrics")}).output,
               ContainsSubstring("proxy_uninspected_connections_total 1"));
}

TEST_CASE("upstream ALPN under inspection: h2 offered by default, http/1.1 alone with inspection.http2 = false",
          "[proxy][inspect][alpn]") {
    auto& e = env();
    OriginServer h2(e.cert, {}, OriginOptions{1, "h2", false});
    const auto alpn_through = [&](const ProxyNode& p) {
        auto r = sh("echo | openssl s_client -proxy 127.0.0.1:" + std::to_string(p.port()) + " -connect " + kHost +
                    ":" + std::to_string(h2.port()) + " -servername " + kHost + " -alpn h2,http/1.1 -CAfile " +
                    e.root().string() + " 2>&1");
        INFO(r.output);
        CHECK_THAT(r.output, ContainsSubstring("Verify return code: 0"));
        return r.output.find("ALPN protocol: h2") != std::string::npos;
    };
    CHECK(alpn_through(main_proxy()));
    auto h1_only = e.proxy("h1-only", "http2 = false\n");
    CHECK_FALSE(alpn_through(*h1_only));
}

TEST_CASE("[inspection] configuration is strict and names file and key", "[proxy][inspect][config]") {
    const auto& ca = TestCa::shared();
    const auto file = ca.dir / "nodes/node-1/proxy-node.toml";
    const std::string text = read_file(file);
    auto c = proxy::load_node_config(file);
    CHECK(c.inspection.enabled);
    CHECK(c.inspection.max_scan_bytes == 100ULL << 20);
    CHECK_FALSE(c.inspection.over_limit_block);
    CHECK(c.inspection.hold_bytes == 256 * 1024);
    CHECK(c.inspection.stream_types == std::vector<std::string>{"text/event-stream", "multipart/x-mixed-replace"});
    auto dir = work_dir("config");
    struct Case {
        std::string from, to, error;
    };
    const std::vector<Case> cases = {
        {"over_limit = \"allow\"", "over_limit = \"maybe\"",
         "inspection.over_limit: must be \"allow\" or \"block\""},
        {"non_http = \"block\"", "non_http = \"pass\"",
         "inspection.non_http: must be \"block\" or \"tunnel\""},
        {"enabled = true\neicar", "enabled = true\nscan_everything = true\neicar",
         "inspection.scan_everything: unknown key"},
        {"# \"pe-marker\" = \"hex:4d5a90000300\"", "\"pe-marker\" = \"hex:4d5a9\"",
         "inspection.patterns.pe-marker: is not valid hex"},
        {"# \"pe-marker\" = \"hex:4d5a90000300\"", "\"pe-marker\" = \"4d5a9000\"",
         "must start with 'hex:' or 'text:'"},
        {"# \"pe-marker\" = \"hex:4d5a90000300\"", "\"pe-marker\" = \"text:ab\"",
         "a pattern must be 4 to 1024 bytes long (is 2)"},
        {"# \"pe-marker\" = \"hex:4d5a90000300\"", "\"Bad Name\" = \"text:abcdef\"",
         "rule names are 1-64 characters"},
        {"# \"pe-marker\" = \"hex:4d5a90000300\"", "\"eicar\" = \"text:abcdef\"",
         "inspection.patterns.eicar: rule name used twice"},
        {"# \"known-bad-installer\" = \"<64 hex digits>\"", "\"x\" = \"abcd\"",
         "inspection.sha256.x: must be a SHA-256 as 64 hex digits"},
        {"max_scan_bytes = 104857600", "max_scan_bytes = 0", "inspection.max_scan_bytes: must be between"},
        {"stream_types = [\"text/event-stream\"", "stream_types = [\"event-stream\"",
         "inspection.stream_types: \"event-stream\" is not a media type"},
        {"stream_types = [\"text/event-stream\"", "stream_types = [\"text/event-stream; charset=utf-8\"",
         "is not a media type"},
        {"stream_types = [\"text/event-stream\"", "stream_types = [1",
         "inspection.stream_types"},
        {"alpn = [\"h2\", \"http/1.1\"]", "alpn = [\"h2\"]",
         "upstream.alpn: must include \"http/1.1\" while [inspection] is enabled"},
    };
    for (const auto& k : cases) {
        CAPTURE(k.to);
        auto pos = text.find(k.from);
        REQUIRE(pos != std::string::npos);
        std::string bad = text;
        bad.replace(pos, k.from.size(), k.to);
        std::ofstream(dir / "bad.toml") << bad;
        CHECK_THROWS_WITH(proxy::load_node_config(dir / "bad.toml"),
                          ContainsSubstring("bad.toml: ") && ContainsSubstring(k.error));
    }
    // Off: h2 is offered again.
    std::string off = text;
    off.replace(off.find("[inspection]\nenabled = true"), 27, "[inspection]\nenabled = false");
    std::ofstream(dir / "off.toml") << off;
    auto o = proxy::load_node_config(dir / "off.toml");
    CHECK_FALSE(o.inspection.enabled);
    CHECK(o.upstream.alpn == std::vector<std::string>{"h2", "http/1.1"});
    std::filesystem::remove_all(dir);
}

TEST_CASE("a 101 to anything but a WebSocket upgrade is ended as not_http, or relayed with non_http = tunnel",
          "[proxy][inspect]") {
    auto& e = env();
    // The origin answers 101 "Upgrade: websocket" to a request that asked for something else.
    const std::string upgrade =
        "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: example-protocol\r\nConnection: Upgrade\r\n\r\n";
    {
        auto& p = main_proxy();
        const auto before = p.records().size();
        TunnelClient c(p.port(), e.origin.port(), e.root(), kHost);
        c.send(upgrade);
        auto got = c.read();
        CHECK(got.find("101") == std::string::npos);
        CHECK(c.closed());
        auto rec = record_after(p, before);
        REQUIRE(rec.is_object());
        CHECK(rec["reason"] == "not_http");
        CHECK_THAT(rec.value("detail", ""),
                   ContainsSubstring("protocol upgrade (101 Switching Protocols) after GET /ws"));
    }
    {
        // A real WebSocket upgrade is inspected (proxy_websocket_test.cpp): the server's
        // first frame passes, and the log says every byte was inspected.
        auto& p = main_proxy();
        const auto before = p.records().size();
        {
            TunnelClient c(p.port(), e.origin.port(), e.root(), kHost);
            c.send("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
            auto got = c.read([](const std::string& r) { return r.find("hello") != std::string::npos; });
            CHECK(got.rfind("HTTP/1.1 101 Switching Protocols", 0) == 0);
            CHECK_THAT(got, ContainsSubstring("\x81\x05hello"));
        }
        auto rec = record_after(p, before);
        REQUIRE(rec.is_object());
        CHECK(rec["decision"] == "intercepted");
        CHECK(rec.value("inspection", "") == "on");
    }
    {
        auto p = e.proxy("ws-tunnel", "non_http = \"tunnel\"\n");
        const auto before = p->records().size();
        {
            TunnelClient c(p->port(), e.origin.port(), e.root(), kHost);
            c.send(upgrade);
            auto got = c.read();
            CHECK(got.rfind("HTTP/1.1 101 Switching Protocols", 0) == 0);
            CHECK_THAT(got, ContainsSubstring("\x81\x05hello"));
        }
        // The upgrade request was inspected, what followed it was not: the log says so.
        auto rec = record_after(*p, before);
        REQUIRE(rec.is_object());
        CHECK(rec["decision"] == "intercepted");
        CHECK(rec.value("inspection", "") == "partial");
        CHECK_THAT(rec.value("detail", ""), ContainsSubstring("not inspected: protocol upgrade"));
    }
}
