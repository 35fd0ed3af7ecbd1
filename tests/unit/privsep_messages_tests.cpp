// The front/signer messages: every type round-trips; the decoder refuses what is out of
// bounds, truncated, extended, of an unknown type or version; and a deterministic mutation
// run (the always-built counterpart of tests/fuzz/privsep_fuzz.cpp) finds no input that
// crashes it or decodes to something that does not re-encode to the same bytes.

#include "privsep/channel.hpp"
#include "privsep/messages.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <random>

using namespace ca::privsep;
using Catch::Matchers::ContainsSubstring;

namespace {

ossl::Bytes bytes(std::string_view s) { return {s.begin(), s.end()}; }

std::vector<Message> samples() {
    const auto cert = bytes("0\x82\x01\x0a-pretend-der");
    protocol::LeafRequest leaf{{"www.example.com", "*.example.org", "192.0.2.1"}, bytes("spki"), 3600};
    protocol::LeafRequest no_lifetime{{"a.example"}, bytes("k"), std::nullopt};
    protocol::LeafResponse issued{"-----BEGIN CERTIFICATE-----\n", {"chain-1"}, "0badc0de", "2026-12-06T00:00:00Z",
                                  "2026-12-06T12:00:00Z", 42};
    ca::NodeStats stats{"node-1", std::string(64, 'a'), 5, 1,
                        std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'000)), true};
    HealthReport health{false, 3, "token gone", true, "", "checkpoint slow", 99, "splitca_x 1\n", {"node-2"}};
    HealthReport empty_health;
    return {
        {1, 7, Attach{}},
        {2, 7, IssueRequest{cert, leaf}},
        {3, 7, IssueRequest{cert, no_lifetime}},
        {4, 7, RevokeRequest{cert, "node-2"}},
        {5, 7, UnrevokeRequest{cert, std::string(64, 'f')}},
        {6, 7, NodesRequest{cert}},
        {7, 7, AuditTailRequest{cert, 50}},
        {8, 7, HealthRequest{}},
        {0, 7, Hello{"bundle", {"node-9", std::string(64, '0')}}},
        {9, 7, Issued{issued}},
        {10, 7, Refused{{protocol::ErrorCode::rate_limited, "slow down"}, 3}},
        {11, 7, RevocationDone{"node-2", true, true, 17, {"node-2"}}},
        {12, 7, NodeList{{stats}, {"node-1"}}},
        {13, 7, AuditTail{{"{\"seq\":1}", "{\"seq\":2}"}, true}},
        {14, 7, health},
        {15, 7, empty_health},
        {0, 6, SignerDown{"the signer was killed by signal 9"}},
        {16, 7, RenewIdentityRequest{cert, bytes("0\x82" "csr")}},
        {17, 7, IdentityRenewed{{"-----BEGIN CERTIFICATE-----\n", "70ba2c94", "2026-12-08T08:04:11Z", 6}}},
    };
}

std::string problem(std::span<const std::uint8_t> wire) {
    auto d = decode(wire);
    REQUIRE(std::holds_alternative<DecodeError>(d));
    return std::get<DecodeError>(d).problem;
}

void put_u32(std::vector<std::uint8_t>& out, std::size_t at, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out[at + i] = static_cast<std::uint8_t>(v >> (24 - 8 * i));
}

}  // namespace

TEST_CASE("every message type round-trips, canonically", "[privsep][messages]") {
    for (const auto& m : samples()) {
        INFO(type_name(m.body));
        const auto wire = encode(m);
        auto d = decode(wire);
        REQUIRE(std::holds_alternative<Message>(d));
        const auto& back = std::get<Message>(d);
        CHECK(back.id == m.id);
        CHECK(back.epoch == m.epoch);
        CHECK(back.body.index() == m.body.index());
        CHECK(encode(back) == wire);
    }
}

TEST_CASE("the decoder refuses truncated, extended and unknown messages", "[privsep][messages]") {
    const auto wire = encode({2, 7, IssueRequest{bytes("cert"), {{"www.example.com"}, bytes("spki"), 3600}}});
    // Every proper prefix is refused; the header's id is kept once it is readable.
    for (std::size_t n = 0; n < wire.size(); ++n) {
        INFO(n);
        auto d = decode({wire.data(), n});
        REQUIRE(std::holds_alternative<DecodeError>(d));
        if (n >= kHeaderBytes) CHECK(std::get<DecodeError>(d).id == 2u);
    }
    auto longer = wire;
    longer.push_back(0);
    CHECK_THAT(problem(longer), ContainsSubstring("1 bytes after the end"));
    auto version = wire;
    version[0] = 2;
    CHECK_THAT(problem(version), ContainsSubstring("protocol version 2"));
    for (std::uint8_t type : {std::uint8_t{0}, std::uint8_t{18}, std::uint8_t{255}}) {
        auto unknown = wire;
        unknown[1] = type;
        CHECK_THAT(problem(unknown), ContainsSubstring("unknown message type"));
    }
}

TEST_CASE("the decoder enforces every bound before it allocates", "[privsep][messages]") {
    // A client certificate length of 4 GiB: refused by its bound, not by running out of bytes.
    auto wire = encode({1, 1, NodesRequest{bytes("c")}});
    put_u32(wire, kHeaderBytes, 0xffffffffu);
    CHECK_THAT(problem(wire), ContainsSubstring("client_certificate: 4294967295 bytes, over its bound"));

    // 101 names (protocol::kMaxNames is 100).
    std::vector<std::string> names(protocol::kMaxNames, "a.example");
    auto many = encode({1, 1, IssueRequest{bytes("c"), {names, bytes("k"), std::nullopt}}});
    put_u32(many, kHeaderBytes + 4 + 1, static_cast<std::uint32_t>(protocol::kMaxNames + 1));
    CHECK_THAT(problem(many), ContainsSubstring("names: 101 items, over its bound"));

    // A name longer than a DNS name can be, a lifetime beyond the protocol's ceiling, a bool
    // that is neither 0 nor 1, an audit tail of 0 or 1001 records, an unknown error code.
    CHECK_THROWS_AS(encode({1, 1, IssueRequest{bytes("c"), {{std::string(254, 'a')}, bytes("k"), std::nullopt}}}),
                    std::length_error);
    auto lifetime = encode({1, 1, IssueRequest{bytes("c"), {{"a.example"}, bytes("k"), 60}}});
    put_u32(lifetime, lifetime.size() - 4, protocol::kMaxLifetimeSeconds + 1);
    CHECK_THAT(problem(lifetime), ContainsSubstring("lifetime_seconds out of range"));
    auto flag = lifetime;
    flag[flag.size() - 5] = 2;
    CHECK_THAT(problem(flag), ContainsSubstring("a boolean must be 0 or 1"));
    auto no_flag = lifetime;
    no_flag[no_flag.size() - 5] = 0;
    CHECK_THAT(problem(no_flag), ContainsSubstring("lifetime_seconds without has_lifetime"));
    for (std::uint32_t count : {0u, kMaxTailRecords + 1}) {
        auto tail = encode({1, 1, AuditTailRequest{bytes("c"), 1}});
        put_u32(tail, tail.size() - 4, count);
        CHECK_THAT(problem(tail), ContainsSubstring("count out of range"));
    }
    auto refused = encode({1, 1, Refused{{protocol::ErrorCode::forbidden, "no"}, 0}});
    refused[kHeaderBytes + 4] = 'F';  // "Forbidden"
    CHECK_THAT(problem(refused), ContainsSubstring("unknown error code"));

    // A renewal CSR: never empty, never over protocol::kMaxCsrBytes, on the wire or when encoding.
    CHECK_THROWS_AS(encode({1, 1, RenewIdentityRequest{bytes("c"), ossl::Bytes(protocol::kMaxCsrBytes + 1, 0x30)}}),
                    std::length_error);
    auto csr = encode({1, 1, RenewIdentityRequest{bytes("c"), bytes("x")}});
    put_u32(csr, csr.size() - 5, static_cast<std::uint32_t>(protocol::kMaxCsrBytes + 1));
    CHECK_THAT(problem(csr), ContainsSubstring("csr: 8193 bytes, over its bound"));
    auto empty_csr = encode({1, 1, RenewIdentityRequest{bytes("c"), bytes("x")}});
    put_u32(empty_csr, empty_csr.size() - 5, 0);
    empty_csr.pop_back();
    CHECK_THAT(problem(empty_csr), ContainsSubstring("empty csr"));
}

TEST_CASE("mutated messages never crash the decoder and never decode to a different encoding",
          "[privsep][messages][mutation]") {
    std::mt19937 rng(20261206);
    std::size_t decoded = 0, refused = 0;
    for (const auto& m : samples()) {
        const auto wire = encode(m);
        for (int round = 0; round < 3000; ++round) {
            auto mutated = wire;
            switch (rng() % 4) {
                case 0:  // flip bytes
                    for (int k = 0, n = 1 + static_cast<int>(rng() % 4); k < n; ++k)
                        mutated[rng() % mutated.size()] ^= static_cast<std::uint8_t>(1 + rng() % 255);
                    break;
                case 1:  // cut
                    mutated.resize(rng() % mutated.size());
                    break;
                case 2:  // insert
                    mutated.insert(mutated.begin() + static_cast<std::ptrdiff_t>(rng() % (mutated.size() + 1)),
                                   static_cast<std::uint8_t>(rng()));
                    break;
                default:  // a length field made huge
                    if (mutated.size() > kHeaderBytes + 4)
                        put_u32(mutated, kHeaderBytes + rng() % (mutated.size() - kHeaderBytes - 3),
                                static_cast<std::uint32_t>(rng()));
            }
            auto d = decode(mutated);
            if (auto* back = std::get_if<Message>(&d)) {
                ++decoded;
                REQUIRE(encode(*back) == mutated);
            } else {
                ++refused;
            }
        }
    }
    CHECK(refused > decoded);  // most mutations break a bound or the framing
    CHECK(decoded > 0);        // and some yield another valid message (a changed id, a byte of text)
}

TEST_CASE("the channel carries whole messages and refuses oversized and empty datagrams", "[privsep][channel]") {
    auto [a_fd, b_fd] = make_channel_pair();
    Channel a(a_fd), b(b_fd);
    for (const auto& m : samples()) REQUIRE(a.send(m));
    for (const auto& m : samples()) {
        auto r = b.receive();
        REQUIRE(std::holds_alternative<Message>(r));
        CHECK(encode(std::get<Message>(r)) == encode(m));
    }
    // A datagram over the limit is refused whole (never read as a shorter message) ...
    std::vector<std::uint8_t> big(kMaxMessageBytes + 10, 0);
    REQUIRE(::send(a.fd(), big.data(), big.size(), 0) == static_cast<ssize_t>(big.size()));
    auto r = b.receive();
    REQUIRE(std::holds_alternative<DecodeError>(r));
    CHECK_THAT(std::get<DecodeError>(r).problem, ContainsSubstring("over the limit"));
    // ... an empty one is not mistaken for the peer going away ...
    REQUIRE(::send(a.fd(), big.data(), 0, 0) == 0);
    CHECK(std::holds_alternative<DecodeError>(b.receive()));
    // ... and the next message is read normally.
    REQUIRE(a.send(samples().front()));
    CHECK(std::holds_alternative<Message>(b.receive()));
    // A waker interrupts a blocked receive; a closed peer reads as Closed.
    Waker waker;
    waker.wake();
    CHECK(std::holds_alternative<Channel::Woken>(b.receive(&waker)));
    {
        Channel gone(::dup(a.fd()));
    }
    ::shutdown(a.fd(), SHUT_WR);
    CHECK(std::holds_alternative<Channel::Closed>(b.receive()));
}
