// seal() splices the hash into the canonical dump instead of serialising twice: the line
// must be exactly what a full canonical dump of the sealed record gives.

#include "audit/record.hpp"

#include <catch2/catch_test_macros.hpp>

using namespace ca::audit;

namespace {

void check_sealed_line_is_canonical(Json record) {
    Sha256 hash;
    const std::string line = seal(record, 42, "2026-01-01T00:00:00.000Z", kZeroHash, hash);
    CHECK(line == canonical(record));
    Json without = record;
    without.erase(field::kHash);
    CHECK(hash == record_hash(kZeroHash, canonical(without)));
}

}  // namespace

TEST_CASE("sealed lines equal the canonical dump for every record shape", "[audit][record]") {
    DecisionRecord d;
    d.node_name = "node-1";
    d.node_fingerprint = std::string(64, 'a');
    d.names = {"example.com", "we\"ird\\\\name\",\"hash\":\"x"};
    d.decision = "issued";
    d.serial = "0102";
    d.spki_sha256 = std::string(64, 'b');
    d.not_before = "2026-01-01T00:00:00Z";
    d.not_after = "2026-01-02T00:00:00Z";
    d.requested_lifetime_s = 3600;
    check_sealed_line_is_canonical(to_json(d));
    check_sealed_line_is_canonical(to_json(ServiceRecord{"start", "detail with \"hash\":\"\" inside"}));
    Json only_late_keys = Json::object();
    only_late_keys["type"] = "x";
    check_sealed_line_is_canonical(only_late_keys);
    Json only_early_keys = Json::object();
    only_early_keys["a"] = 1;
    check_sealed_line_is_canonical(only_early_keys);
    check_sealed_line_is_canonical(Json::object());
}

TEST_CASE("decision records built without a JSON tree are byte-identical to the canonical dump", "[audit][record]") {
    DecisionRecord d;
    d.node_name = "node-1";
    d.node_fingerprint = std::string(64, 'a');
    d.names = {"example.com", "*.example.com", "192.0.2.7"};
    d.decision = "issued";
    d.serial = "4f0102";
    d.spki_sha256 = std::string(64, 'b');
    d.not_before = "2026-01-01T00:00:00Z";
    d.not_after = "2026-01-02T00:00:00Z";
    Sha256 prev{};
    prev[0] = 0x12;
    prev[31] = 0xfe;
    auto same = [&](const DecisionRecord& r, std::uint64_t seq) {
        auto plain = PlainDecision::from(r);
        REQUIRE(plain);
        Sha256 fast_hash, json_hash;
        const std::string fast = plain->seal(seq, "2026-01-01T00:00:00.123Z", prev, fast_hash);
        Json j = to_json(r);
        const std::string slow = seal(j, seq, "2026-01-01T00:00:00.123Z", prev, json_hash);
        CHECK(fast == slow);
        CHECK(fast_hash == json_hash);
    };
    same(d, 0);
    d.requested_lifetime_s = 3600;
    same(d, 18446744073709551615ull);
    DecisionRecord denied = d;
    denied.decision = "denied";
    denied.reason = "name_denied";
    denied.serial = denied.not_before = denied.not_after = "";
    denied.requested_lifetime_s.reset();
    same(denied, 7);
    denied.names = {};
    same(denied, 8);

    SECTION("anything that needs escaping takes the JSON path") {
        for (const std::string bad : {"we\"ird", "back\\slash", "tab\there", "b\xc3\xbc" "cher.example", "\x7f"}) {
            DecisionRecord r = d;
            r.names = {"example.com", bad};
            CHECK_FALSE(PlainDecision::from(r));
            r = d;
            r.node_name = bad;
            CHECK_FALSE(PlainDecision::from(r));
        }
    }
    SECTION("an unknown decision is refused as by to_json") {
        DecisionRecord r = d;
        r.decision = "maybe";
        CHECK_THROWS_AS(PlainDecision::from(r), std::invalid_argument);
    }
}
