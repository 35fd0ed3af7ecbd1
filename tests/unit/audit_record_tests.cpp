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
