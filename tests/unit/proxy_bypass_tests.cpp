// Bypass decisions: host patterns, list files, the learned-host table and the policy that
// combines them (proxy-node/bypass), and the "can the proxy terminate this ClientHello" check.

#include "bypass/bypass_policy.hpp"
#include "bypass/host_patterns.hpp"
#include "bypass/learned_hosts.hpp"
#include "support/client_hello.hpp"
#include "support/process.hpp"
#include "tls/alerts.hpp"
#include "tls/server_context.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <fstream>

using namespace proxy;
using namespace proxy::bypass;
using Catch::Matchers::ContainsSubstring;

namespace {

HostPattern pattern(const char* text) {
    std::string error;
    auto p = parse_host_pattern(text, error);
    INFO(text << ": " << error);
    REQUIRE(p);
    return *p;
}

std::string refusal(const char* text) {
    std::string error;
    CHECK_FALSE(parse_host_pattern(text, error));
    return error;
}

std::string matched(const HostPatterns& p, const char* host) {
    const HostPattern* m = p.match(host);
    return m ? m->text : "";
}

}  // namespace

TEST_CASE("host patterns: exact names, *.suffix, IP literals; junk refused", "[proxy][bypass]") {
    CHECK(pattern("Bank.Example.").text == "bank.example");
    CHECK(pattern("*.Bank.Example").text == "*.bank.example");
    CHECK(pattern("*.bank").suffix);
    CHECK(pattern("203.0.113.5").text == "203.0.113.5");
    CHECK(pattern("2001:db8::1").text == "2001:db8::1");
    CHECK_THAT(refusal("*"), ContainsSubstring("not a host name"));
    CHECK_THAT(refusal("*.*.example.com"), ContainsSubstring("wildcard is allowed only as the whole first label"));
    CHECK_THAT(refusal("a*.example.com"), ContainsSubstring("whole first label"));
    CHECK_THAT(refusal("www.*.example.com"), ContainsSubstring("whole first label"));
    CHECK_THAT(refusal(""), ContainsSubstring("not a host name"));
    CHECK_THAT(refusal("bank..example"), ContainsSubstring("not a host name"));
    CHECK_THAT(refusal("-bank.example"), ContainsSubstring("not a host name"));
    CHECK_THAT(refusal("bank.example/path"), ContainsSubstring("not a host name"));
    CHECK_THAT(refusal("https://bank.example"), ContainsSubstring("not a host name"));
    CHECK_THAT(refusal("bank example"), ContainsSubstring("not a host name"));
    CHECK_THAT(refusal(std::string(300, 'a').c_str()), ContainsSubstring("not a host name"));
}

TEST_CASE("host patterns match exact names and names below a suffix", "[proxy][bypass]") {
    HostPatterns p({pattern("pinned.example.com"), pattern("*.bank.example"), pattern("*.health"),
                    pattern("203.0.113.5")});
    CHECK(matched(p, "pinned.example.com") == "pinned.example.com");
    CHECK(matched(p, "www.pinned.example.com").empty());  // exact means exact
    CHECK(matched(p, "example.com").empty());
    CHECK(matched(p, "www.bank.example") == "*.bank.example");
    CHECK(matched(p, "a.b.c.bank.example") == "*.bank.example");  // any depth
    CHECK(matched(p, "bank.example").empty());                      // not the base itself
    CHECK(matched(p, "evilbank.example").empty());                  // label boundary
    CHECK(matched(p, "bank.example.evil.com").empty());
    CHECK(matched(p, "clinic.health") == "*.health");
    CHECK(matched(p, "health").empty());
    CHECK(matched(p, "203.0.113.5") == "203.0.113.5");
    CHECK(matched(p, "203.0.113.6").empty());
    CHECK(HostPatterns({}).empty());
    CHECK(matched(HostPatterns({}), "anything.example").empty());
}

TEST_CASE("bypass list files: comments, blank lines, errors name file and line", "[proxy][bypass]") {
    auto dir = testing_support::make_temp_dir("splitca-bypass-list");
    std::ofstream(dir / "good.txt") << "# banking\n\n  *.bank.example   # all of it\nbank.example\r\n\t\n";
    auto list = load_host_list(dir / "good.txt");
    REQUIRE(list.size() == 2);
    CHECK(list[0].text == "*.bank.example");
    CHECK(list[1].text == "bank.example");
    std::ofstream(dir / "bad.txt") << "ok.example\n# fine\nnot a name\n";
    CHECK_THROWS_WITH(load_host_list(dir / "bad.txt"), ContainsSubstring("bad.txt:3: 'not a name' is not a host name"));
    std::ofstream(dir / "long.txt") << std::string(5000, 'a') << "\n";
    CHECK_THROWS_WITH(load_host_list(dir / "long.txt"), ContainsSubstring("long.txt:1: line longer than"));
    CHECK_THROWS_WITH(load_host_list(dir / "missing.txt"), ContainsSubstring("cannot read the bypass list"));
    // The shipped example list is valid.
    auto shipped = load_host_list(std::filesystem::path(SPLITCA_SOURCE_DIR) / "proxy-node/bypass-lists/privacy-example.txt");
    CHECK(shipped.size() > 10);
    std::filesystem::remove_all(dir);
}

TEST_CASE("learned hosts expire and are bounded", "[proxy][bypass]") {
    using namespace std::chrono_literals;
    const auto t0 = LearnedHosts::Clock::now();
    LearnedHosts t(2);
    t.remember("a", LearnedReason::client_certificate, 60s, "x", t0);
    CHECK(t.find("a", t0 + 59s));
    CHECK_FALSE(t.find("a", t0 + 60s));  // expired and dropped
    CHECK(t.size() == 0);
    t.remember("a", LearnedReason::client_certificate, 60s, "x", t0);
    t.remember("b", LearnedReason::client_rejected, 60s, "y", t0);
    t.remember("c", LearnedReason::client_rejected, 60s, "z", t0);  // evicts the oldest
    CHECK(t.size() == 2);
    CHECK_FALSE(t.find("a", t0));
    CHECK(t.find("b", t0)->reason == LearnedReason::client_rejected);
    t.remember("b", LearnedReason::client_rejected, 60s, "y", t0 + 30s);  // refresh moves it to the back
    t.remember("d", LearnedReason::client_rejected, 60s, "w", t0 + 30s);
    CHECK(t.find("b", t0 + 80s));
    CHECK_FALSE(t.find("c", t0 + 30s));
    LearnedHosts off(0);
    off.remember("a", LearnedReason::client_rejected, 60s, "x", t0);
    CHECK_FALSE(off.find("a", t0));
    LearnedHosts t2(5);
    t2.remember("a", LearnedReason::client_rejected, 0s, "x", t0);
    CHECK_FALSE(t2.find("a", t0));
}

TEST_CASE("bypass policy: the SNI and the CONNECT host must both be covered", "[proxy][bypass]") {
    BypassRules rules;
    rules.patterns = {pattern("*.bank.example"), pattern("pinned.example.com")};
    BypassPolicy p(rules);
    auto d = p.decide("www.bank.example", "www.bank.example", 443);
    REQUIRE(d);
    CHECK(d->reason == Reason::bypass_pattern);
    CHECK(d->log_reason == "pattern:*.bank.example");
    CHECK(p.decide("", "pinned.example.com", 443)->log_reason == "pattern:pinned.example.com");  // no SNI: CONNECT host
    CHECK(p.decide("login.bank.example", "api.bank.example", 443));  // both covered
    // An SNI of a bypassed host does not buy a tunnel to somewhere else.
    CHECK_FALSE(p.decide("www.bank.example", "evil.example", 443));
    CHECK_FALSE(p.decide("www.bank.example", "198.51.100.7", 443));
    CHECK_FALSE(p.decide("evil.example", "www.bank.example", 443));
    CHECK_FALSE(p.decide("other.example", "other.example", 443));
    CHECK(p.covers_connect("www.bank.example", 443));
    CHECK_FALSE(p.covers_connect("other.example", 443));
}

TEST_CASE("bypass policy: learned hosts by kind, keyed by name, CONNECT host and port", "[proxy][bypass]") {
    BypassRules rules;
    rules.learn_rejected = std::chrono::seconds(60);
    BypassPolicy p(rules);
    p.remember_client_certificate("mtls.example", "mtls.example", 8443);
    auto d = p.decide("mtls.example", "mtls.example", 8443);
    REQUIRE(d);
    CHECK(d->reason == Reason::bypass_client_certificate);
    CHECK(d->log_reason == "client_certificate");
    CHECK_FALSE(p.decide("mtls.example", "mtls.example", 443));   // other port
    CHECK_FALSE(p.decide("mtls.example", "evil.example", 8443));  // other destination
    CHECK(p.covers_connect("mtls.example", 8443));
    CHECK_FALSE(p.learn_rejection("pinned.example", "pinned.example", 443, "decrypt_error"));
    CHECK_FALSE(p.decide("pinned.example", "pinned.example", 443));
    for (const char* alert : {"unknown_ca", "bad_certificate", "certificate_unknown"}) {
        CHECK(p.learn_rejection(std::string("p-") + alert + ".example", std::string("p-") + alert + ".example", 443, alert));
        CHECK(p.decide(std::string("p-") + alert + ".example", std::string("p-") + alert + ".example", 443)->log_reason ==
              "learned");
    }
    CHECK(p.learned_hosts() == 4);

    BypassRules defaults;  // learning from rejections is off by default
    BypassPolicy q(defaults);
    CHECK_FALSE(q.learn_rejection("pinned.example", "pinned.example", 443, "unknown_ca"));
    CHECK_FALSE(q.decide("pinned.example", "pinned.example", 443));
    BypassRules refuse;
    refuse.client_certificate = Rule::refuse;  // nothing to remember when such servers are refused
    BypassPolicy r(refuse);
    r.remember_client_certificate("mtls.example", "mtls.example", 443);
    CHECK_FALSE(r.decide("mtls.example", "mtls.example", 443));
}

TEST_CASE("ClientHellos the proxy cannot terminate are recognised", "[proxy][bypass][tls]") {
    std::string why;
    tls::ClientHello h13;
    h13.legacy_version = 0x0303;
    h13.supported_versions = {0x0304, 0x0303};
    h13.cipher_suites = {0x1301, 0xc02b};
    CHECK(tls::can_terminate(h13, why) == tls::Terminable::yes);
    tls::ClientHello h12;
    h12.legacy_version = 0x0303;
    h12.cipher_suites = {0x009c, 0xc02b};
    CHECK(tls::can_terminate(h12, why) == tls::Terminable::yes);
    tls::ClientHello old;
    old.legacy_version = 0x0301;
    old.cipher_suites = {0xc02b, 0x002f};
    CHECK(tls::can_terminate(old, why) == tls::Terminable::no_version);
    CHECK_THAT(why, ContainsSubstring("at most TLS 1.0"));
    tls::ClientHello rsa_only;  // TLS 1.2, RSA key exchange and CBC only
    rsa_only.legacy_version = 0x0303;
    rsa_only.cipher_suites = {0x002f, 0x0035, 0x009c, 0xc02f};
    CHECK(tls::can_terminate(rsa_only, why) == tls::Terminable::no_suite);
    CHECK_THAT(why, ContainsSubstring("no cipher suite in common"));
    tls::ClientHello v13_only_ccm;  // TLS 1.3 with only a suite OpenSSL does not serve by default
    v13_only_ccm.legacy_version = 0x0303;
    v13_only_ccm.supported_versions = {0x0304};
    v13_only_ccm.cipher_suites = {0x1304, 0xc02b};  // and TLS 1.2 is not offered, so c02b does not count
    CHECK(tls::can_terminate(v13_only_ccm, why) == tls::Terminable::no_suite);
    tls::ClientHello grease;  // GREASE versions are ignored when naming what was offered
    grease.legacy_version = 0x0301;
    grease.supported_versions = {0x0a0a, 0x0302};
    grease.cipher_suites = {0x002f};
    CHECK(tls::can_terminate(grease, why) == tls::Terminable::no_version);
    CHECK_THAT(why, ContainsSubstring("at most TLS 1.1"));
}

namespace {

// A real ClientHello from OpenSSL with the given version range and TLS 1.2 cipher list.
std::vector<std::uint8_t> openssl_hello(int min_version, int max_version, const char* tls12_ciphers) {
    return testing_support::openssl_client_hello({"hello.example", {}, min_version, max_version, tls12_ciphers});
}

tls::Terminable terminable(const std::vector<std::uint8_t>& wire, std::string& why) {
    tls::ClientHello h;
    REQUIRE(tls::parse_client_hello(wire, 16384, h) == tls::HelloStatus::complete);
    return tls::can_terminate(h, why);
}

}  // namespace

TEST_CASE("real OpenSSL ClientHellos: versions and suites are read and judged", "[proxy][bypass][tls]") {
    std::string why;
    tls::ClientHello modern;
    REQUIRE(tls::parse_client_hello(openssl_hello(TLS1_2_VERSION, TLS1_3_VERSION, "DEFAULT"), 16384, modern) ==
            tls::HelloStatus::complete);
    CHECK(modern.legacy_version == 0x0303);
    CHECK(std::find(modern.supported_versions.begin(), modern.supported_versions.end(), 0x0304) !=
          modern.supported_versions.end());
    CHECK(std::find(modern.cipher_suites.begin(), modern.cipher_suites.end(), 0x1301) != modern.cipher_suites.end());
    CHECK(tls::can_terminate(modern, why) == tls::Terminable::yes);
    CHECK(terminable(openssl_hello(TLS1_2_VERSION, TLS1_2_VERSION, "ECDHE-ECDSA-AES128-GCM-SHA256"), why) ==
          tls::Terminable::yes);
    CHECK(terminable(openssl_hello(TLS1_VERSION, TLS1_VERSION, "ALL:@SECLEVEL=0"), why) == tls::Terminable::no_version);
    CHECK_THAT(why, ContainsSubstring("at most TLS 1.0"));
    CHECK(terminable(openssl_hello(TLS1_2_VERSION, TLS1_2_VERSION, "AES128-SHA:AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256"),
                     why) == tls::Terminable::no_suite);
}

TEST_CASE("alert names are the RFC names", "[proxy][bypass][tls]") {
    CHECK(tls::alert_name(48) == "unknown_ca");
    CHECK(tls::alert_name(42) == "bad_certificate");
    CHECK(tls::alert_name(46) == "certificate_unknown");
    CHECK(tls::alert_name(116) == "certificate_required");
    CHECK(tls::alert_name(250) == "alert_250");
}
