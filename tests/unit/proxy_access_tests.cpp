// Client access control: CIDR parsing and matching (proxy-node/access).

#include "access/networks.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

using namespace proxy::access;
using Catch::Matchers::ContainsSubstring;

namespace {

Network net(const char* text) {
    std::string error;
    auto n = parse_network(text, error);
    INFO(text << ": " << error);
    REQUIRE(n);
    return *n;
}

Address addr(const char* text) {
    auto a = parse_address(text);
    INFO(text);
    REQUIRE(a);
    return *a;
}

std::string refusal(const char* text) {
    std::string error;
    CHECK_FALSE(parse_network(text, error));
    return error;
}

}  // namespace

TEST_CASE("CIDR networks are parsed strictly", "[proxy][access]") {
    CHECK(net("10.0.0.0/8").text == "10.0.0.0/8");
    CHECK(net("192.168.1.7").text == "192.168.1.7/32");  // a bare address is one host
    CHECK(net("::1").text == "::1/128");
    CHECK(net("FC00::/7").text == "fc00::/7");
    CHECK(net("0.0.0.0/0").prefix == 0);
    CHECK(net("::ffff:10.0.0.0/104").text == "10.0.0.0/8");  // IPv4-mapped is IPv4
    CHECK_THAT(refusal("10.0.0.1/8"), ContainsSubstring("host bits set (did you mean 10.0.0.0/8?)"));
    CHECK_THAT(refusal("fc00::1/7"), ContainsSubstring("did you mean fc00::/7?"));
    CHECK_THAT(refusal("10.0.0.0/33"), ContainsSubstring("prefix length must be 0-32"));
    CHECK_THAT(refusal("::/129"), ContainsSubstring("0-128"));
    CHECK_THAT(refusal("10.0.0.0/"), ContainsSubstring("prefix length"));
    CHECK_THAT(refusal("10.0.0.0/8x"), ContainsSubstring("prefix length"));
    CHECK_THAT(refusal("10.0.0.0/-1"), ContainsSubstring("prefix length"));
    CHECK_THAT(refusal("10.0.0/8"), ContainsSubstring("is not ADDRESS/PREFIX"));
    CHECK_THAT(refusal("example.com/8"), ContainsSubstring("is not ADDRESS/PREFIX"));
    CHECK_THAT(refusal(""), ContainsSubstring("is not ADDRESS/PREFIX"));
    CHECK_THAT(refusal("10.0.0.0/8/8"), ContainsSubstring("prefix length"));
}

TEST_CASE("client addresses match their networks, and only theirs", "[proxy][access]") {
    Networks n({net("10.0.0.0/8"), net("172.16.0.0/12"), net("192.168.0.0/16"), net("127.0.0.2/32"),
                      net("2001:db8:abcd::/48"), net("fc00::/7")});
    CHECK(n.allows(addr("10.0.0.0")));
    CHECK(n.allows(addr("10.255.255.255")));
    CHECK_FALSE(n.allows(addr("11.0.0.0")));
    CHECK_FALSE(n.allows(addr("9.255.255.255")));
    CHECK(n.allows(addr("172.16.0.1")));
    CHECK(n.allows(addr("172.31.255.255")));
    CHECK_FALSE(n.allows(addr("172.32.0.0")));
    CHECK_FALSE(n.allows(addr("172.15.255.255")));
    CHECK(n.allows(addr("127.0.0.2")));
    CHECK_FALSE(n.allows(addr("127.0.0.1")));
    CHECK_FALSE(n.allows(addr("127.0.0.3")));
    CHECK(n.allows(addr("2001:db8:abcd:ffff::1")));
    CHECK_FALSE(n.allows(addr("2001:db8:abce::1")));
    CHECK(n.allows(addr("fd12::1")));
    CHECK(n.allows(addr("fc00::")));
    CHECK_FALSE(n.allows(addr("fe00::1")));
    // An IPv4 client on an IPv6 socket is matched as IPv4.
    CHECK(n.allows(addr("::ffff:10.1.2.3")));
    CHECK(n.allows(addr("::ffff:127.0.0.2")));
    CHECK_FALSE(n.allows(addr("::ffff:8.8.8.8")));
    CHECK(n.match(addr("::ffff:192.168.3.4"))->text == "192.168.0.0/16");
    // IPv4 networks never match IPv6 addresses that merely share bytes.
    CHECK_FALSE(n.allows(addr("a00::1")));
    CHECK_FALSE(Networks({}).allows(addr("10.0.0.1")));
    CHECK(Networks({net("0.0.0.0/0")}).allows(addr("8.8.8.8")));
    CHECK_FALSE(Networks({net("0.0.0.0/0")}).allows(addr("::1")));
}

TEST_CASE("the default allows loopback and private ranges only", "[proxy][access]") {
    Networks d(default_allowed_clients());
    for (const char* ok : {"127.0.0.1", "127.9.9.9", "::1", "10.1.1.1", "172.20.0.1", "192.168.0.1", "fd00::5",
                           "::ffff:127.0.0.1", "::ffff:192.168.1.1"})
        CHECK(d.allows(addr(ok)));
    for (const char* no : {"8.8.8.8", "172.32.0.1", "192.169.0.1", "2001:4860::8888", "::2", "::ffff:8.8.8.8",
                           "100.64.0.1", "169.254.1.1", "fe80::1"})
        CHECK_FALSE(d.allows(addr(no)));
}
