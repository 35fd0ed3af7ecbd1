// WebSocket under inspection, end to end: the real proxy-node and ca-service, a real
// WebSocket server and client (python3-websockets, tests/integration/websocket_peer.py)
// through a CONNECT tunnel, with and without permessage-deflate; and a raw TLS client for
// frames no library sends (protocol errors).

#include "proxy_harness.hpp"
#include "support/digest.hpp"
#include "support/origin_pki.hpp"
#include "websocket_peer.hpp"

#include "inspect/rule_set.hpp"
#include "ossl/encoding.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>


#include <fstream>
#include <thread>

using namespace testing_support;
using Catch::Matchers::ContainsSubstring;
using Json = nlohmann::json;

namespace {

constexpr const char* kHost = "ws.test.example";

// A message payload for the client: written to a file of its own, named by the argument.
std::string payload_file(const std::string& s) {
    static int n = 0;
    static const std::filesystem::path dir = make_temp_dir("splitca-ws-messages");
    const auto f = dir / ("m" + std::to_string(++n));
    std::ofstream(f, std::ios::binary) << s;
    return f.string();
}

std::string hex(const std::string& s) {
    return ossl::to_hex(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()));
}

struct Env {
    const TestCa& ca = TestCa::shared();
    OriginPki pki;
    std::filesystem::path dir = make_temp_dir("splitca-ws-env");
    CaService service{ca, make_temp_dir("splitca-ws-ca")};
    OriginCert cert = pki.issue(valid_for({kHost}));
    WebSocketServer server{&cert, dir / "server"};
    std::uint16_t server_port = server.port();
    WebSocketServer plain_server{nullptr, dir / "plain-server"};  // ws:// and http://

    Env() { pki.write_root(dir / "origin-root.pem"); }
    std::filesystem::path root() const { return ca.dir / "pki/root-ca.pem"; }
    std::unique_ptr<ProxyNode> proxy(const std::string& name, const std::string& inspection = "") const {
        ProxyOptions o;
        o.hosts[kHost] = "127.0.0.1";
        o.inspection = inspection;
        return std::make_unique<ProxyNode>(ca, service.port(), make_temp_dir("splitca-ws-" + name),
                                           dir / "origin-root.pem", o);
    }
    std::string received() const { return server.received(); }
};

Env& env() {
    static Env e;
    return e;
}

ProxyNode& main_proxy() {
    static auto p = env().proxy("node", "hold_bytes = 4096\nwebsocket_max_message_bytes = 1048576\n");
    return *p;
}

// Runs the client; its JSON result.
// `plain`: ws:// to the plaintext server (CONNECT, then no TLS).
Json ws_client(const ProxyNode& p, const std::string& path, const std::string& compression,
               const std::vector<std::string>& messages = {}, bool plain = false) {
    auto& e = env();
    std::vector<std::string> argv = {kPython,
                                     websocket_peer_script().string(),
                                     "client",
                                     std::to_string(p.port()),
                                     kHost,
                                     std::to_string(plain ? e.plain_server.port() : e.server_port),
                                     plain ? std::string("-") : e.root().string(),
                                     path,
                                     compression};
    argv.insert(argv.end(), messages.begin(), messages.end());
    auto r = run(argv, {}, std::chrono::seconds(60));
    INFO(r.output);
    // The result is the last line (warnings may come before it).
    std::string out = r.output;
    while (!out.empty() && out.back() == '\n') out.pop_back();
    auto j = Json::parse(out.substr(out.rfind('\n') == std::string::npos ? 0 : out.rfind('\n') + 1), nullptr, false);
    REQUIRE(j.is_object());
    return j;
}

std::string line_for(const std::string& kind, const std::string& payload) {
    return kind + " " + std::to_string(payload.size()) + " " + sha256_hex(payload) + "\n";
}

// The WebSocket handshake for /echo on a raw tunnel; where the frames start in what it reads.
std::size_t open_websocket(TunnelClient& t) {
    t.send(std::string("GET /echo HTTP/1.1\r\nHost: ") + kHost +
           "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
    auto head = t.read([](const std::string& r) { return r.find("\r\n\r\n") != std::string::npos; });
    REQUIRE(head.rfind("HTTP/1.1 101", 0) == 0);
    return head.find("\r\n\r\n") + 4;
}

std::string metrics(const ProxyNode& p) { return run({"curl", "-s", p.mgmt_url("/metrics")}).output; }

}  // namespace

TEST_CASE("WebSocket messages pass inspected both ways, with and without permessage-deflate",
          "[proxy][websocket]") {
    auto& e = env();
    auto& p = main_proxy();
    const std::string compression = GENERATE(std::string("deflate"), std::string("none"));
    INFO("compression: " << compression);
    const auto before = p.record_count(kHost);
    const std::string text = "hello through the node";
    std::string binary;
    for (std::uint32_t i = 0; i < 300000; ++i) binary.push_back(static_cast<char>((i * 7919u) % 251u));  // past hold_bytes
    std::string repetitive(200000, 'r');  // compresses to almost nothing
    auto j = ws_client(p, "/echo", compression,
                       {"text:" + payload_file(text), "binary:" + payload_file(binary), "fragments:" + payload_file("frag-one ") + "," + payload_file("frag-two ") + "," +
                            payload_file("frag-three"),
                        "text:" + payload_file(repetitive)});
    INFO(j.dump() << p.log());
    REQUIRE(j["received"].size() == 4);
    CHECK(j["received"][0]["sha256"] == sha256_hex(text));
    CHECK(j["received"][1]["sha256"] == sha256_hex(binary));
    CHECK(j["received"][1]["kind"] == "binary");
    CHECK(j["received"][2]["sha256"] == sha256_hex("frag-one frag-two frag-three"));
    CHECK(j["received"][3]["sha256"] == sha256_hex(repetitive));
    const bool deflated = j.value("extensions", "").find("permessage-deflate") != std::string::npos;
    CHECK(deflated == (compression == "deflate"));
    const std::string got = e.received();
    CHECK_THAT(got, ContainsSubstring(line_for("text", text)));
    CHECK_THAT(got, ContainsSubstring(line_for("binary", binary)));
    auto rec = p.record_after(kHost, before);
    REQUIRE(rec.is_object());
    CHECK(rec["decision"] == "intercepted");
    CHECK(rec.value("inspection", "") == "on");
    CHECK(rec.value("reason", "") == "none");
    const std::string m = metrics(p);
    CHECK_THAT(m, ContainsSubstring("proxy_websocket_messages_total{sender=\"client\"}"));
    CHECK(m.find("proxy_websocket_connections_total 0\n") == std::string::npos);
}

TEST_CASE("EICAR in a WebSocket message closes it with 1008 before the receiver gets it", "[proxy][websocket]") {
    auto& e = env();
    auto& p = main_proxy();
    const std::string eicar = proxy::inspect::eicar_test_string();
    const std::string compression = GENERATE(std::string("deflate"), std::string("none"));
    INFO("compression: " << compression);

    SECTION("from the client, whole and split across fragments: the server never receives it") {
        const std::string padded = std::string(10000, 'p') + eicar;  // past hold_bytes: it streams, its end waits
        for (const std::string& message :
             {"text:" + payload_file(eicar), "fragments:" + payload_file(eicar.substr(0, 30)) + "," + payload_file(eicar.substr(30)),
              "text:" + payload_file(padded)}) {
            const auto before = p.record_count(kHost);
            auto j = ws_client(p, "/echo", compression, {"text:" + payload_file("clean first"), message});
            INFO(message << "\n" << j.dump() << p.log());
            REQUIRE(j["received"].size() == 1);  // the clean message's echo, then the close
            CHECK(j.value("close_code", 0) == 1008);
            CHECK_THAT(j.value("close_reason", ""), ContainsSubstring("eicar"));
            auto rec = p.record_after(kHost, before);
            REQUIRE(rec.is_object());
            CHECK(rec["decision"] == "blocked");
            CHECK(rec["reason"] == "inspection");
            CHECK(rec.value("rule", "") == "eicar");
            CHECK_THAT(rec.value("detail", ""), ContainsSubstring("websocket text message from the client on GET /echo"));
        }
        const std::string got = e.received();
        CHECK(got.find(sha256_hex(eicar)) == std::string::npos);
        CHECK(got.find(sha256_hex(padded)) == std::string::npos);
    }
    SECTION("from the server, whole and in fragments: the client never receives it") {
        for (const std::string& path :
             {"/push/" + hex(eicar), "/push-fragments/" + hex(eicar.substr(0, 10)) + "," + hex(eicar.substr(10))}) {
            const auto before = p.record_count(kHost);
            auto j = ws_client(p, path, compression);
            INFO(path << "\n" << j.dump() << p.log());
            CHECK(j["received"].empty());
            CHECK(j.value("close_code", 0) == 1008);
            auto rec = p.record_after(kHost, before);
            REQUIRE(rec.is_object());
            CHECK(rec.value("rule", "") == "eicar");
            CHECK_THAT(rec.value("detail", ""), ContainsSubstring("websocket text message from the server"));
        }
    }
    CHECK(p.log().find(eicar) == std::string::npos);  // no payload in logs
    CHECK_THAT(metrics(p), ContainsSubstring("proxy_inspection_blocks_total{rule=\"eicar\"}"));
}

TEST_CASE("A WebSocket message over websocket_max_message_bytes closes it with 1009", "[proxy][websocket]") {
    auto& p = main_proxy();
    const std::string compression = GENERATE(std::string("deflate"), std::string("none"));
    INFO("compression: " << compression);
    const auto before = p.record_count(kHost);
    // 2 MiB of one letter: with deflate a few KiB on the wire, a bomb for a careless decoder.
    auto j = ws_client(p, "/echo", compression, {"text:" + payload_file(std::string(2 << 20, 'z'))});
    INFO(j.dump() << p.log());
    CHECK(j["received"].empty());
    CHECK(j.value("close_code", 0) == 1009);
    auto rec = p.record_after(kHost, before);
    REQUIRE(rec.is_object());
    CHECK(rec["reason"] == "websocket_too_big");
    CHECK_THAT(rec.value("detail", ""), ContainsSubstring("websocket_max_message_bytes (1048576)"));
}

TEST_CASE("WebSocket frames that break RFC 6455 close it with 1002", "[proxy][websocket]") {
    auto& e = env();
    auto& p = main_proxy();
    struct Case {
        const char* what;
        std::string frame;
        const char* detail;
    };
    const std::vector<Case> cases = {
        {"unmasked", std::string("\x81\x02hi", 4), "not masked"},
        {"reserved opcode", std::string("\x83\x80\x01\x02\x03\x04", 6), "reserved data opcode 3"},
        {"RSV1 without deflate", std::string("\xc1\x80\x01\x02\x03\x04", 6), "RSV1 set without permessage-deflate"},
        {"fragmented ping", std::string("\x09\x80\x01\x02\x03\x04", 6), "fragmented control frame"},
        {"continuation first", std::string("\x80\x80\x01\x02\x03\x04", 6), "continuation frame outside a message"},
    };
    for (const auto& c : cases) {
        INFO(c.what);
        const auto before = p.record_count(kHost);
        TunnelClient t(p.port(), e.server_port, e.root(), kHost);
        const std::size_t start = open_websocket(t);
        t.send(c.frame);
        auto got = t.read().substr(start);
        INFO(p.log());
        // A close frame from the node: 1002 (0x03ea).
        REQUIRE(got.size() >= 4);
        CHECK(got.substr(0, 1) == "\x88");
        CHECK(got.substr(2, 2) == "\x03\xea");
        auto rec = p.record_after(kHost, before);
        REQUIRE(rec.is_object());
        CHECK(rec["reason"] == "malformed_websocket");
        CHECK_THAT(rec.value("detail", ""), ContainsSubstring(c.detail));
    }
}

TEST_CASE("non_http = tunnel keeps WebSockets inspected", "[proxy][websocket]") {
    auto p = env().proxy("tunnel", "non_http = \"tunnel\"\n");
    const auto before = p->record_count(kHost);
    auto j = ws_client(*p, "/echo", "deflate", {"text:" + payload_file(proxy::inspect::eicar_test_string())});
    INFO(j.dump() << p->log());
    CHECK(j.value("close_code", 0) == 1008);
    auto rec = p->record_after(kHost, before);
    REQUIRE(rec.is_object());
    CHECK(rec.value("inspection", "") == "on");
}

TEST_CASE("Plain HTTP in a CONNECT tunnel (ws://, http:// by CONNECT) is inspected, not refused as not TLS",
          "[proxy][websocket][plain]") {
    auto& e = env();
    auto& p = main_proxy();
    const std::string compression = GENERATE(std::string("deflate"), std::string("none"));
    INFO("compression: " << compression);
    {
        const auto before = p.record_count(kHost);
        auto j = ws_client(p, "/echo", compression, {"text:" + payload_file("over ws://")}, true);
        INFO(j.dump() << p.log());
        REQUIRE(j["received"].size() == 1);
        CHECK(j["received"][0]["sha256"] == sha256_hex("over ws://"));
        auto rec = p.record_after(kHost, before);
        REQUIRE(rec.is_object());
        CHECK(rec["mode"] == "connect");
        CHECK(rec["decision"] == "proxied");
        CHECK(rec.value("inspection", "") == "on");
    }
    {
        const auto before = p.record_count(kHost);
        auto j = ws_client(p, "/echo", compression, {"text:" + payload_file(proxy::inspect::eicar_test_string())}, true);
        INFO(j.dump() << p.log());
        CHECK(j["received"].empty());
        CHECK(j.value("close_code", 0) == 1008);
        auto rec = p.record_after(kHost, before);
        REQUIRE(rec.is_object());
        CHECK(rec["decision"] == "blocked");
        CHECK(rec.value("rule", "") == "eicar");
    }
    // curl sends http:// by CONNECT with --proxytunnel: the page comes back through the relay.
    const auto before = p.record_count(kHost);
    auto r = run({"curl", "-sS", "--max-time", "20", "-p", "-x", p.proxy_url(), "-o", "/dev/null", "-w", "%{http_code}",
                  "http://" + std::string(kHost) + ":" + std::to_string(e.plain_server.port()) + "/page"});
    INFO(r.output << p.log());
    CHECK(r.output == "200");
    auto rec = p.record_after(kHost, before);
    REQUIRE(rec.is_object());
    CHECK(rec["mode"] == "connect");
    CHECK(rec.value("inspection", "") == "on");
}

TEST_CASE("Without inspection, plain HTTP in a CONNECT tunnel is still refused as not TLS", "[proxy][plain]") {
    auto& e = env();
    auto p = e.proxy("no-inspection", "enabled = false\n");
    const auto before = p->record_count(kHost);
    auto r = run({"curl", "-sS", "--max-time", "20", "-p", "-x", p->proxy_url(), "-o", "/dev/null", "-w", "%{http_code}",
                  "http://" + std::string(kHost) + ":" + std::to_string(e.plain_server.port()) + "/page"});
    INFO(r.output << p->log());
    CHECK(r.output.find("403") != std::string::npos);
    auto rec = p->record_after(kHost, before);
    REQUIRE(rec.is_object());
    CHECK(rec["reason"] == "not_tls");
}

TEST_CASE("Hostile WebSocket peers: a frame claiming 2^62 bytes, 1-byte fragments, a ping flood", "[proxy][websocket]") {
    auto& e = env();
    auto& p = main_proxy();
    // A masked client frame: FIN + opcode, then the payload masked with key 01 02 03 04.
    auto masked = [](std::uint8_t b0, const std::string& payload) {
        std::string f(1, static_cast<char>(b0));
        f.push_back(static_cast<char>(0x80 | payload.size()));
        const char key[4] = {1, 2, 3, 4};
        f.append(key, 4);
        for (std::size_t i = 0; i < payload.size(); ++i) f.push_back(static_cast<char>(payload[i] ^ key[i & 3]));
        return f;
    };
    {
        // Refused from its header alone, at once: the node does not wait for 2^62 bytes.
        const auto before = p.record_count(kHost);
        TunnelClient t(p.port(), e.server_port, e.root(), kHost);
        const std::size_t start = open_websocket(t);
        const auto sent = std::chrono::steady_clock::now();
        t.send(std::string("\x82\xff\x40\x00\x00\x00\x00\x00\x00\x00\x01\x02\x03\x04", 14));
        auto got = t.read().substr(start);
        CHECK(std::chrono::steady_clock::now() - sent < std::chrono::seconds(3));
        REQUIRE(got.size() >= 4);
        CHECK(got.substr(2, 2) == "\x03\xf1");  // 1009
        auto rec = p.record_after(kHost, before);
        REQUIRE(rec.is_object());
        CHECK(rec["reason"] == "websocket_too_big");
    }
    {
        // EICAR in 68 one-byte fragments, with pings between them: still found, never delivered.
        const auto before = p.record_count(kHost);
        TunnelClient t(p.port(), e.server_port, e.root(), kHost);
        const std::size_t start = open_websocket(t);
        const std::string eicar = proxy::inspect::eicar_test_string();
        std::string frames;
        for (std::size_t i = 0; i < eicar.size(); ++i) {
            const std::uint8_t op = i == 0 ? 0x01 : 0x00;
            frames += masked(static_cast<std::uint8_t>(op | (i + 1 == eicar.size() ? 0x80 : 0)), eicar.substr(i, 1));
            if (i % 10 == 0) frames += masked(0x89, "p");
        }
        t.send(frames);
        auto got = t.read().substr(start);
        // Pongs from the server may come first; then the node's close, 1008.
        CHECK(got.find(std::string("\x88", 1)) != std::string::npos);
        CHECK(got.find("\x03\xf0") != std::string::npos);
        auto rec = p.record_after(kHost, before);
        REQUIRE(rec.is_object());
        CHECK(rec.value("rule", "") == "eicar");
    }
    {
        // 2,000 pings: each passes (the server answers), the node stays responsive.
        TunnelClient t(p.port(), e.server_port, e.root(), kHost);
        const std::size_t start = open_websocket(t);
        std::string pings;
        for (int i = 0; i < 2000; ++i) pings += masked(0x89, "x");
        t.send(pings);
        t.send(masked(0x81, "after the pings"));
        auto got = t.read([](const std::string& r) { return r.find("after the pings") != std::string::npos; });
        CHECK(got.find("after the pings", start) != std::string::npos);
    }
    const auto ok = ws_client(p, "/echo", "none", {"text:" + payload_file("still fine")});
    CHECK(ok["received"].size() == 1);
}
