// ICAP on the wire (proxy-node/inspect/icap/icap_protocol): service URLs, answer heads,
// Encapsulated, OPTIONS, Transfer-* and the chunked encapsulation.

#include "inspect/icap/icap_protocol.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

using namespace proxy::icap;
using Catch::Matchers::ContainsSubstring;

TEST_CASE("ICAP service URLs: scheme, default ports, IPv6, and what is refused", "[icap]") {
    auto u = parse_service_url("icap://127.0.0.1:1344/avscan");
    CHECK(!u.tls);
    CHECK(u.host == "127.0.0.1");
    CHECK(u.port == 1344);
    CHECK(u.service == "/avscan");
    CHECK(u.authority() == "127.0.0.1:1344");
    u = parse_service_url("icaps://av.example/respmod?x=1");
    CHECK(u.tls);
    CHECK(u.port == 11344);
    CHECK(u.service == "/respmod?x=1");
    u = parse_service_url("icap://[::1]:2000/av");
    CHECK(u.host == "::1");
    CHECK(u.authority() == "[::1]:2000");
    for (const char* bad : {"http://h/av", "icap://h", "icap://h/", "icap://:1344/av", "icap://h:0/av", "icap://h:70000/av",
                            "icap://h:/av", "icap://[::1/av", "icap://h/a b"}) {
        CAPTURE(bad);
        CHECK_THROWS_AS(parse_service_url(bad), std::invalid_argument);
    }
}

TEST_CASE("ICAP answer heads: complete, incomplete, folded fields, and malformed", "[icap]") {
    std::size_t used = 0;
    const std::string text =
        "ICAP/1.0 200 OK\r\nISTag: \"abc\"\r\nX-Violations-Found: 1\r\n\t-\r\n\tTest.Threat\r\n"
        "Encapsulated: res-hdr=0, res-body=20\r\n\r\nHTTP/1.1";
    auto h = parse_head(text, used, 65536);
    REQUIRE(h);
    CHECK(h->status == 200);
    CHECK(h->reason == "OK");
    CHECK(used == text.find("HTTP/1.1"));
    CHECK(h->header("istag") == "\"abc\"");
    CHECK_THAT(std::string(*h->header("X-Violations-Found")), ContainsSubstring("Test.Threat"));
    CHECK(!parse_head("ICAP/1.0 204 No Content\r\nISTag: x\r\n", used, 65536));
    CHECK_THROWS_WITH(parse_head("HTTP/1.1 200 OK\r\n\r\n", used, 65536), ContainsSubstring("not an ICAP answer"));
    CHECK_THROWS_WITH(parse_head("hello there", used, 65536), ContainsSubstring("not an ICAP answer"));
    CHECK_THROWS_WITH(parse_head("ICAP/1.0 2x0 OK\r\n\r\n", used, 65536), ContainsSubstring("status"));
    CHECK_THROWS_WITH(parse_head("ICAP/1.0 200 OK\r\nno colon here\r\n\r\n", used, 65536), ContainsSubstring("header field"));
    CHECK_THROWS_WITH(parse_head("ICAP/1.0 200 OK\r\n" + std::string(100, 'x'), used, 64), ContainsSubstring("longer than"));
}

TEST_CASE("Encapsulated: sections in order, a body last, offsets increasing", "[icap]") {
    auto s = parse_encapsulated("req-hdr=0, res-hdr=137, res-body=296");
    REQUIRE(s.size() == 3);
    CHECK(s[1].name == "res-hdr");
    CHECK(s[2].offset == 296);
    CHECK(parse_encapsulated("null-body=0").size() == 1);
    for (const char* bad : {"", "res-hdr=0", "res-hdr=0, res-body=x", "res-hdr=10, res-body=5", "res-body=0, res-hdr=4",
                            "foo=0, res-body=3", "res-hdr=4, res-body=9"}) {
        CAPTURE(bad);
        CHECK_THROWS_AS(parse_encapsulated(bad), std::runtime_error);
    }
}

TEST_CASE("OPTIONS: methods, preview, Transfer-* by extension, limits", "[icap]") {
    std::size_t used = 0;
    auto h = parse_head("ICAP/1.0 200 OK\r\nMethods: RESPMOD, REQMOD\r\nISTag: \"CI0001-x\"\r\nPreview: 1024\r\n"
                        "Transfer-Preview: *\r\nTransfer-Ignore: jpg, PNG\r\nTransfer-Complete: exe\r\n"
                        "Max-Connections: 50\r\nAllow: 204\r\nOptions-TTL: 3600\r\n\r\n",
                        used, 65536);
    REQUIRE(h);
    auto o = parse_options(*h);
    CHECK(o.supports("REQMOD"));
    CHECK(o.supports("respmod"));
    CHECK(o.preview == 1024u);
    CHECK(o.istag == "CI0001-x");
    CHECK(o.max_connections == 50u);
    CHECK(o.allow_204);
    CHECK(o.ttl == std::chrono::seconds(3600));
    CHECK(o.transfer_for("png") == Options::Transfer::ignore);
    CHECK(o.transfer_for("exe") == Options::Transfer::complete);
    CHECK(o.transfer_for("txt") == Options::Transfer::preview);
    CHECK(o.transfer_for("") == Options::Transfer::preview);
    CHECK(target_extension("/a/b.PNG?x=1") == "png");
    CHECK(target_extension("https://h/dir.d/file") == "");
    CHECK(target_extension("/") == "");
    auto no_methods = parse_head("ICAP/1.0 200 OK\r\nISTag: x\r\n\r\n", used, 65536);
    CHECK_THROWS_WITH(parse_options(*no_methods), ContainsSubstring("Methods"));
    auto refused = parse_head("ICAP/1.0 404 Service Not Found\r\n\r\n", used, 65536);
    CHECK_THROWS_WITH(parse_options(*refused), ContainsSubstring("OPTIONS answered 404"));
}

TEST_CASE("chunked encapsulation: encoded, decoded in any split, ieof, malformed", "[icap]") {
    std::string out;
    const std::string data = "hello, world";
    append_chunk(out, {reinterpret_cast<const std::uint8_t*>(data.data()), data.size()});
    CHECK(out == "c\r\nhello, world\r\n");
    const std::string wire = out + "3\r\nabc\r\n" + std::string(kLastChunkIeof);
    for (std::size_t step = 1; step <= wire.size(); ++step) {
        CAPTURE(step);
        ChunkDecoder d;
        std::string body;
        for (std::size_t at = 0; at < wire.size() && !d.done(); at += step) d.feed(std::string_view(wire).substr(at, step), &body);
        CHECK(d.done());
        CHECK(body == "hello, worldabc");
        CHECK(d.decoded() == 15);
    }
    ChunkDecoder stops;
    CHECK(stops.feed("1\r\nx\r\n0\r\n\r\nICAP/1.0 204", nullptr) == 11);
    for (const char* bad : {"zz\r\n", "3\r\nabcX\r\n", "3\nabc", "1234567890abcdef0\r\n"}) {
        CAPTURE(bad);
        ChunkDecoder d;
        CHECK_THROWS_AS(d.feed(bad, nullptr), std::runtime_error);
    }
}
