// Unit tests for the proxy's parsers of untrusted input: ClientHello and proxy request heads.

#include "config/node_config.hpp"
#include "http/request_head.hpp"
#include "support/client_hello.hpp"
#include "support/process.hpp"
#include "support/test_ca.hpp"
#include "tls/client_hello.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <openssl/ssl.h>

#include <fstream>
#include <random>
#include <regex>

using namespace proxy;

namespace {

// A real ClientHello from OpenSSL, with SNI and ALPN.
std::vector<std::uint8_t> real_client_hello(const char* sni, const std::vector<std::uint8_t>& alpn) {
    return testing_support::openssl_client_hello({sni ? sni : "", alpn, 0, 0, ""});
}

}  // namespace

TEST_CASE("ClientHello: SNI and ALPN are read from a real hello", "[proxy][parse]") {
    const std::vector<std::uint8_t> alpn = {2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    auto hello = real_client_hello("Good.Test.Example", alpn);
    tls::ClientHello out;
    REQUIRE(tls::parse_client_hello(hello, 16384, out) == tls::HelloStatus::complete);
    CHECK(out.server_name == "Good.Test.Example");
    CHECK(out.alpn == std::vector<std::string>{"h2", "http/1.1"});
    // every strict prefix asks for more, never claims completion or crashes
    for (std::size_t n = 0; n < hello.size(); ++n) {
        tls::ClientHello partial;
        CHECK(tls::parse_client_hello({hello.data(), n}, 16384, partial) == tls::HelloStatus::need_more);
    }
    tls::ClientHello none;
    REQUIRE(tls::parse_client_hello(real_client_hello(nullptr, {}), 16384, none) == tls::HelloStatus::complete);
    CHECK(none.server_name.empty());
    CHECK(none.alpn.empty());
}

TEST_CASE("ClientHello: garbage, oversize and mutations are refused without crashing", "[proxy][parse]") {
    tls::ClientHello out;
    const std::string get = "GET / HTTP/1.1\r\n\r\n";
    CHECK(tls::parse_client_hello({reinterpret_cast<const std::uint8_t*>(get.data()), get.size()}, 16384, out) ==
          tls::HelloStatus::not_tls);
    std::vector<std::uint8_t> big = {0x16, 0x03, 0x01, 0x40, 0x00, 0x01, 0x00, 0x3f, 0xfc};
    CHECK(tls::parse_client_hello(big, 1024, out) == tls::HelloStatus::too_large);
    auto hello = real_client_hello("a.example.com", {});
    std::mt19937 rng(42);
    for (int i = 0; i < 20000; ++i) {
        auto m = hello;
        m[rng() % m.size()] ^= static_cast<std::uint8_t>(1 + rng() % 255);
        tls::ClientHello o;
        (void)tls::parse_client_hello(m, 16384, o);  // any status; sanitizers watch the reads
    }
}

TEST_CASE("proxy request heads are parsed strictly", "[proxy][parse]") {
    auto h = http::parse_request_head("CONNECT good.test.example:443 HTTP/1.1\r\nHost: good.test.example:443\r\n\r\n");
    REQUIRE(h);
    CHECK(h->method == "CONNECT");
    CHECK(h->target == "good.test.example:443");
    CHECK(h->header("host") == "good.test.example:443");
    CHECK_FALSE(http::parse_request_head("CONNECT  x:1 HTTP/1.1\r\n\r\n"));
    CHECK_FALSE(http::parse_request_head("CONNECT x:1 HTTP/2.0\r\n\r\n"));
    CHECK_FALSE(http::parse_request_head("CONNECT x:1 HTTP/1.1\r\nBad Header: v\r\n\r\n"));
    CHECK_FALSE(http::parse_request_head("CONNECT x:1 HTTP/1.1\r\n folded\r\n\r\n"));
    CHECK_FALSE(http::parse_request_head("GET\r\n\r\n"));

    CHECK(http::parse_authority("good.test.example:443", std::nullopt)->port == 443);
    CHECK(http::parse_authority("[::1]:8443", std::nullopt)->host == "::1");
    CHECK_FALSE(http::parse_authority("good.test.example", std::nullopt));
    CHECK_FALSE(http::parse_authority("good.test.example:0", std::nullopt));
    CHECK_FALSE(http::parse_authority("good.test.example:99999", std::nullopt));
    CHECK_FALSE(http::parse_authority("bad host:443", std::nullopt));
    CHECK_FALSE(http::parse_authority("[not-v6]:443", std::nullopt));

    auto u = http::parse_http_url("http://example.com:8080/a/b?c=d#frag");
    REQUIRE(u);
    CHECK(u->authority.port == 8080);
    CHECK(u->path_and_query == "/a/b?c=d");
    CHECK(http::parse_http_url("http://example.com")->path_and_query == "/");
    CHECK_FALSE(http::parse_http_url("http://user@example.com/"));
    CHECK_FALSE(http::parse_http_url("ftp://example.com/"));
}

TEST_CASE("the proxy-node.toml hsm-setup writes loads; unknown keys and bad values name file and key",
          "[proxy][config]") {
    const auto& ca = testing_support::TestCa::shared();
    const auto file = ca.dir / "nodes/node-1/proxy-node.toml";
    auto c = load_node_config(file);
    CHECK(c.name == "node-1");
    CHECK(c.ca_service.port != 0);
    CHECK(c.upstream.system_trust);
    // [inspection] (on) reads HTTP/1.1 and h2: both stay offered.
    CHECK(c.upstream.alpn == std::vector<std::string>{"h2", "http/1.1"});
    CHECK(c.inspection.http2);
    CHECK(c.inspection.enabled);
    CHECK(c.inspection.eicar);

    auto dir = testing_support::make_temp_dir("splitca-proxy-config");
    auto text = testing_support::read_file(file);
    std::ofstream(dir / "typo.toml") << text << "\n[limitz]\nidle = 1\n";
    CHECK_THROWS_WITH(load_node_config(dir / "typo.toml"),
                      Catch::Matchers::ContainsSubstring("typo.toml: limitz: unknown key"));
    std::ofstream(dir / "range.toml") << std::regex_replace(text, std::regex("idle_timeout_seconds = 300"),
                                                            "idle_timeout_seconds = 0");
    CHECK_THROWS_WITH(load_node_config(dir / "range.toml"),
                      Catch::Matchers::ContainsSubstring("limits.idle_timeout_seconds: must be between 1 and 86400"));
    // The node name goes into log lines, metric labels and leaf subjects: plain characters only.
    for (const char* bad : {"node 1", "node\\\"1", "", "n\u00e9"}) {
        CAPTURE(bad);
        std::ofstream(dir / "name.toml") << std::regex_replace(text, std::regex("name = \"node-1\""),
                                                               std::string("name = \"") + bad + "\"");
        CHECK_THROWS_WITH(load_node_config(dir / "name.toml"),
                          Catch::Matchers::ContainsSubstring("node.name: must be 1-64 characters"));
    }
    std::filesystem::remove_all(dir);
}
