// RFC 6962 Merkle frontier and the record format (sealing, parsing, canonical form).

#include "audit/chain.hpp"
#include "audit/merkle.hpp"
#include "audit/record.hpp"
#include "ossl/encoding.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <vector>

using namespace ca::audit;
using Catch::Matchers::ContainsSubstring;

namespace {

// RFC 6962 section 2.1, written as the recursion in the RFC.
Sha256 reference_root(const std::vector<Sha256>& leaves, std::size_t begin, std::size_t end) {
    const std::size_t n = end - begin;
    if (n == 1) return leaves[begin];
    std::size_t k = 1;
    while (k * 2 < n) k *= 2;
    return merkle_node_hash(reference_root(leaves, begin, begin + k), reference_root(leaves, begin + k, end));
}

}  // namespace

TEST_CASE("merkle frontier root equals the RFC 6962 tree hash for every size up to 130") {
    std::vector<Sha256> leaves;
    MerkleFrontier frontier;
    CHECK(frontier.root() == ossl::sha256(std::span<const std::uint8_t>{}));
    for (int i = 0; i < 130; ++i) {
        const std::string entry = "entry " + std::to_string(i);
        leaves.push_back(merkle_leaf_hash(ossl::as_bytes(entry)));
        frontier.append(leaves.back());
        INFO("size " << leaves.size());
        REQUIRE(frontier.size() == leaves.size());
        REQUIRE(frontier.root() == reference_root(leaves, 0, leaves.size()));
    }
}

TEST_CASE("merkle leaf and node hashes use the RFC 6962 domain prefixes") {
    // RFC 6962 test vector: the empty leaf hashes to SHA-256(0x00).
    CHECK(ossl::to_hex(merkle_leaf_hash({})) ==
          "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
    const Sha256 a = merkle_leaf_hash(ossl::as_bytes("a"));
    CHECK(merkle_node_hash(a, a) != merkle_leaf_hash(ossl::as_bytes("a")));
}

TEST_CASE("a merkle frontier rebuilt from its parts continues identically") {
    MerkleFrontier f;
    for (int i = 0; i < 11; ++i) f.append(merkle_leaf_hash(ossl::as_bytes(std::to_string(i))));
    auto copy = MerkleFrontier::from_parts(f.size(), f.subtree_roots());
    REQUIRE(copy);
    CHECK(*copy == f);
    f.append(merkle_leaf_hash(ossl::as_bytes("x")));
    copy->append(merkle_leaf_hash(ossl::as_bytes("x")));
    CHECK(copy->root() == f.root());
    CHECK_FALSE(MerkleFrontier::from_parts(11, {}));  // 11 = 0b1011 needs three subtree roots
}

TEST_CASE("a sealed record parses back, and its hash covers prev and content") {
    Json j = to_json(DecisionRecord{"node-a",
                                    std::string(64, 'a'),
                                    {"x.example"},
                                    "issued",
                                    "",
                                    "0badcafe",
                                    std::string(64, 'c'),
                                    "2024-05-01T12:00:00Z",
                                    "2024-05-01T13:00:00Z",
                                    3600});
    Sha256 prev{};
    prev[0] = 7;
    Sha256 hash;
    const std::string line = seal(j, 42, "2024-05-01T12:00:00.000Z", prev, hash);
    CHECK(line.find('\n') == std::string::npos);
    CHECK_THAT(line, ContainsSubstring("\"seq\":42"));

    ParseResult parsed = parse_record(line, {"f", 1});
    REQUIRE(parsed.record);
    CHECK(parsed.record->seq == 42);
    CHECK(parsed.record->hash == hash);
    CHECK(parsed.record->prev == prev);
    CHECK(parsed.record->type == "decision");
}

TEST_CASE("parse_record refuses modified, reformatted and oddly shaped records") {
    Json j = to_json(ServiceRecord{"start", "v1"});
    Sha256 hash;
    const std::string line = seal(j, 0, "2024-05-01T12:00:00.000Z", kZeroHash, hash);

    std::string modified = line;
    modified.replace(modified.find("v1"), 2, "v2");
    CHECK_THAT(parse_record(modified, {"f", 3}).problem,
               ContainsSubstring("record 0 (f line 3): hash mismatch"));

    CHECK_THAT(parse_record(Json::parse(line).dump(2), {"f", 1}).problem,
               ContainsSubstring("canonical form"));
    CHECK_THAT(parse_record("{\"seq\":1", {"f", 1}).problem, ContainsSubstring("not a valid audit record"));
    CHECK_THAT(parse_record("{\"a\":{\"b\":1}}", {"f", 1}).problem,
               ContainsSubstring("not a valid audit record"));
    CHECK_THAT(parse_record("{\"seq\":1}", {"f", 1}).problem, ContainsSubstring("\"type\" is missing"));
}

TEST_CASE("a decision must be issued or denied") {
    DecisionRecord r;
    r.decision = "maybe";
    CHECK_THROWS_AS(to_json(r), std::invalid_argument);
}

TEST_CASE("invalid UTF-8 in a name is replaced, not fatal, and the record still verifies") {
    DecisionRecord r;
    r.decision = "denied";
    r.names = {std::string("bad\xff\xfe") + "name"};
    Json j = to_json(r);
    Sha256 hash;
    const std::string line = seal(j, 0, "t", kZeroHash, hash);
    CHECK(parse_record(line, {"f", 1}).record);
}

TEST_CASE("rfc3339_millis writes UTC with milliseconds") {
    using namespace std::chrono;
    const auto t = system_clock::time_point(seconds(1714564800) + milliseconds(7));
    CHECK(rfc3339_millis(t) == "2024-05-01T12:00:00.007Z");
}
