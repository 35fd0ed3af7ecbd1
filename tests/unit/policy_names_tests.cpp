#include "policy/names.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <stdexcept>
#include <string>

using ca::policy::ClassifiedName;
using ca::policy::NameKind;
using ca::policy::NamePattern;
using Catch::Matchers::ContainsSubstring;
using protocol::Error;
using protocol::ErrorCode;

namespace {

ClassifiedName valid(std::string_view name) {
    auto result = ca::policy::classify_name(name);
    if (const auto* error = std::get_if<Error>(&result)) FAIL(name << ": " << error->message);
    return std::get<ClassifiedName>(result);
}

Error invalid(std::string_view name) {
    auto result = ca::policy::classify_name(name);
    INFO(name);
    REQUIRE(std::holds_alternative<Error>(result));
    const Error& error = std::get<Error>(result);
    CHECK(error.code == ErrorCode::invalid_name);
    return error;
}

std::string label(std::size_t length, char c = 'a') {
    return std::string(length, c);
}

}  // namespace

TEST_CASE("DNS names are lower-cased and a trailing dot is removed", "[policy][names]") {
    const auto name = valid("WWW.Example.COM");
    CHECK(name.kind == NameKind::dns);
    CHECK(name.normalised == "www.example.com");
    CHECK_FALSE(name.wildcard);
    CHECK(valid("example.com.").normalised == "example.com");
    invalid("example.com..");
    CHECK_THAT(invalid(".example.com").message, ContainsSubstring("empty label"));
    invalid("a..example.com");
}

TEST_CASE("names need two labels and a non-numeric top-level label", "[policy][names]") {
    CHECK_THAT(invalid("localhost").message, ContainsSubstring("single label"));
    invalid("com");
    CHECK_THAT(invalid("example.123").message, ContainsSubstring("all-numeric"));
    invalid("0x7f.0.0.1");
    CHECK(valid("123.example").normalised == "123.example");
    CHECK(valid("example.x1").normalised == "example.x1");
}

TEST_CASE("labels are LDH without leading or trailing hyphens", "[policy][names]") {
    CHECK(valid("a-b.example.com").normalised == "a-b.example.com");
    CHECK(valid("r3---sn-abc.googlevideo.com").normalised == "r3---sn-abc.googlevideo.com");
    CHECK_THAT(invalid("-a.example.com").message, ContainsSubstring("hyphen"));
    invalid("a-.example.com");
    invalid("example.com-");
    CHECK_THAT(invalid("under_score.example.com").message, ContainsSubstring("\"_\""));
    invalid("sp ace.example.com");
    invalid("tab\t.example.com");
    invalid(std::string_view("nul\0.example.com", 16));
    invalid("at@example.com");
    invalid("example.com/path");
}

TEST_CASE("label and total length limits, at and over", "[policy][names][limits]") {
    CHECK(valid(label(63) + ".example.com").normalised.size() == 63 + 12);
    CHECK_THAT(invalid(label(64) + ".example.com").message, ContainsSubstring("64 characters"));
    const std::string at_limit = label(63) + "." + label(63) + "." + label(63) + "." + label(61);
    REQUIRE(at_limit.size() == 253);
    CHECK(valid(at_limit).normalised == at_limit);
    CHECK(valid(at_limit + ".").normalised == at_limit);  // the trailing dot does not count
    const std::string over = label(63) + "." + label(63) + "." + label(63) + "." + label(62);
    REQUIRE(over.size() == 254);
    CHECK_THAT(invalid(over).message, ContainsSubstring("at most 253"));
}

TEST_CASE("raw UTF-8 is refused in favour of the A-label", "[policy][names][idna]") {
    const Error error = invalid(
        "b\xc3\xbc"
        "cher.example");
    CHECK_THAT(error.message, ContainsSubstring("A-label"));
    CHECK_THAT(error.message, ContainsSubstring("punycode"));
    CHECK_THAT(error.message, ContainsSubstring("\\xc3\\xbc"));  // quoted escaped, not raw
    invalid("\xe4\xbe\x8b\xe5\xad\x90.\xe6\xb5\x8b\xe8\xaf\x95");
    CHECK(valid("xn--bcher-kva.example").normalised == "xn--bcher-kva.example");
    CHECK(valid("XN--BCHER-KVA.example").normalised == "xn--bcher-kva.example");
}

TEST_CASE("xn-- labels must be valid IDNA2008 A-labels", "[policy][names][idna]") {
    CHECK(valid("xn--55qx5d.example").normalised == "xn--55qx5d.example");       // 公司
    CHECK(valid("www.xn--fa-hia.example").normalised == "www.xn--fa-hia.example");  // faß (non-transitional)
    CHECK(valid("*.xn--80ak6aa92e.example").wildcard);
    // Punycode that does not decode, or decodes to what IDNA2008 disallows.
    for (const char* bad : {"xn--a.example", "xn--zz.example", "xn--ls8h.example", "host.xn--abc.example"}) {
        CAPTURE(bad);
        const Error error = invalid(bad);
        CHECK(error.code == protocol::ErrorCode::invalid_name);
        CHECK_THAT(error.message, ContainsSubstring("not a valid IDNA A-label"));
    }
    invalid("xn--.example");  // (refused earlier: a label ends with a hyphen)
    CHECK_THROWS_WITH(NamePattern::parse("*.xn--a.example"), ContainsSubstring("not a valid IDNA A-label"));
    // Other labels with hyphens in the third and fourth places are left alone.
    CHECK(valid("ab--cd.example").normalised == "ab--cd.example");
}

TEST_CASE("a wildcard is only a whole leftmost label", "[policy][names][wildcard]") {
    const auto wildcard = valid("*.Example.com");
    CHECK(wildcard.wildcard);
    CHECK(wildcard.normalised == "*.example.com");
    CHECK(wildcard.base() == "example.com");
    CHECK(valid("*.a.b.example.com").base() == "a.b.example.com");
    for (const char* bad : {"a.*.b.com", "*a.example.com", "a*.example.com", "**.example.com",
                            "*.*.example.com", "example.*", "*", "*.", "w*w.example.com"}) {
        INFO(bad);
        auto result = ca::policy::classify_name(bad);
        REQUIRE(std::holds_alternative<Error>(result));
        CHECK(std::get<Error>(result).code == ErrorCode::invalid_name);
    }
    CHECK_THAT(invalid("a.*.b.com").message, ContainsSubstring("whole leftmost label"));
}

TEST_CASE("IPv4 literals", "[policy][names][ip]") {
    const auto ip = valid("192.0.2.1");
    CHECK(ip.kind == NameKind::ip);
    CHECK(ip.ip == ossl::Bytes{192, 0, 2, 1});
    CHECK(ip.normalised == "192.0.2.1");
    CHECK(valid("0.0.0.0").ip == ossl::Bytes{0, 0, 0, 0});
    CHECK(valid("255.255.255.255").ip == ossl::Bytes{255, 255, 255, 255});
    for (const char* bad :
         {"999.1.1.1", "256.0.0.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1.2.3.4.", "1..2.3", "1234", "..."}) {
        INFO(bad);
        CHECK_THAT(invalid(bad).message, ContainsSubstring("IPv4"));
    }
}

TEST_CASE("IPv6 literals", "[policy][names][ip]") {
    const auto loopback = valid("::1");
    CHECK(loopback.kind == NameKind::ip);
    REQUIRE(loopback.ip.size() == 16);
    CHECK(loopback.ip[15] == 1);
    CHECK(valid("2001:DB8:0:0:0:0:0:1").normalised == "2001:db8::1");
    CHECK(valid("::ffff:192.0.2.1").ip.size() == 16);
    for (const char* bad : {"[::1]", "fe80::1%eth0", "2001:db8::g", "1.2.3.4:443", "example.com:443",
                            ":::", "1:2:3:4:5:6:7:8:9", "2001:db8::1/64"}) {
        INFO(bad);
        CHECK_THAT(invalid(bad).message, ContainsSubstring("IPv6"));
    }
}

TEST_CASE("name patterns parse, case-insensitively", "[policy][names][patterns]") {
    CHECK(NamePattern::parse("Example.COM").scope() == NamePattern::Scope::exact);
    CHECK(NamePattern::parse("*.Example.com").scope() == NamePattern::Scope::below);
    CHECK(NamePattern::parse("*.Example.com").domain() == "example.com");
    CHECK(NamePattern::parse(".example.com").scope() == NamePattern::Scope::subtree);
    CHECK(NamePattern::parse(".internal").domain() == "internal");
    CHECK(NamePattern::parse("*.Example.com").text() == "*.Example.com");
    for (const char* bad : {"", "*", "*.", ".", "..example.com", "a.*.example.com", "**.example.com",
                            "*example.com", "example.com.", "ex ample.com",
                            "b\xc3\xbc"
                            "cher.example",
                            "-a.example", "example.123"}) {
        INFO(bad);
        CHECK_THROWS_AS(NamePattern::parse(bad), std::invalid_argument);
    }
    CHECK_THROWS_WITH(NamePattern::parse("a.*.example.com"),
                      ContainsSubstring("*.example.com (names below it)"));
}

TEST_CASE("patterns match concrete names", "[policy][names][patterns]") {
    const auto name = [](const char* n) { return valid(n); };
    const auto exact = NamePattern::parse("example.com");
    CHECK(exact.covers_all(name("EXAMPLE.com")));
    CHECK_FALSE(exact.covers_all(name("www.example.com")));

    const auto below = NamePattern::parse("*.example.com");
    CHECK(below.covers_all(name("www.example.com")));
    CHECK(below.covers_all(name("a.b.c.example.com")));
    CHECK_FALSE(below.covers_all(name("example.com")));
    CHECK_FALSE(below.covers_all(name("notexample.com")));
    CHECK_FALSE(below.covers_all(name("example.com.evil.net")));

    const auto subtree = NamePattern::parse(".example.com");
    CHECK(subtree.covers_all(name("example.com")));
    CHECK(subtree.covers_all(name("a.b.example.com")));
    CHECK_FALSE(subtree.covers_all(name("badexample.com")));

    CHECK_FALSE(subtree.covers_any(name("192.0.2.1")));  // patterns never match IPs
}

TEST_CASE("patterns against requested wildcards", "[policy][names][patterns][wildcard]") {
    const auto star = valid("*.example.com");
    // allow: the rule must contain every name the wildcard stands for
    CHECK(NamePattern::parse("*.example.com").covers_all(star));
    CHECK(NamePattern::parse(".example.com").covers_all(star));
    CHECK(NamePattern::parse(".com").covers_all(star));
    CHECK_FALSE(NamePattern::parse("www.example.com").covers_all(star));
    CHECK_FALSE(NamePattern::parse("*.www.example.com").covers_all(star));
    CHECK_FALSE(NamePattern::parse("example.com").covers_all(star));
    // deny: one covered name is enough
    CHECK(NamePattern::parse("bank.example.com").covers_any(star));
    CHECK(NamePattern::parse(".bank.example.com").covers_any(star));
    CHECK(NamePattern::parse("*.example.com").covers_any(star));
    CHECK_FALSE(NamePattern::parse("example.com").covers_any(star));         // *.x does not cover x
    CHECK_FALSE(NamePattern::parse("a.bank.example.com").covers_any(star));  // one label only
    CHECK_FALSE(NamePattern::parse("*.bank.example.com").covers_any(star));
    CHECK_FALSE(NamePattern::parse("bank.example.org").covers_any(star));
}
