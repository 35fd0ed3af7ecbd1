// `ca-audit show` and find_records(): searching by name, serial and node.

#include "audit/audit_log.hpp"
#include "audit/search.hpp"
#include "support/audit_fixtures.hpp"
#include "support/software_signer.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

using namespace ca::audit;
using Catch::Matchers::ContainsSubstring;
using testing_support::sample_decision;
using testing_support::SoftwareSigner;
using testing_support::TempDir;

namespace {

struct SearchLog {
    TempDir tmp;
    SoftwareSigner signer;
    std::filesystem::path dir = tmp.path() / "audit";

    SearchLog() {
        AuditConfig cfg;
        cfg.dir = dir;
        cfg.checkpoint_every = 5;
        AuditLog log(cfg, signer);
        log.append(ServiceRecord{"start", "test"});
        for (int i = 0; i < 12; ++i) log.append(sample_decision(i, i % 3 == 0 ? "node-b" : "node-a"));
        DecisionRecord denied = sample_decision(99);
        denied.decision = "denied";
        denied.reason = "name_not_allowed";
        denied.serial = "";
        denied.names = {"Bank.Example.", "other.example"};
        log.append(denied);
    }
    std::vector<std::string> find(RecordQuery q) const { return find_records(dir, q).lines; }
};

std::string field_of(const std::string& line, const char* name) {
    return Json::parse(line)[name].dump();
}

}  // namespace

TEST_CASE("show by name matches any requested name, ignoring case and a trailing dot") {
    SearchLog s;
    RecordQuery q;
    q.name = "host7.example.com";
    auto found = s.find(q);
    REQUIRE(found.size() == 1);
    CHECK_THAT(found[0], ContainsSubstring("host7.example.com"));

    q.name = "bank.example";
    found = s.find(q);
    REQUIRE(found.size() == 1);
    CHECK(field_of(found[0], field::kDecision) == "\"denied\"");

    q.name = "nowhere.example";
    CHECK(s.find(q).empty());
}

TEST_CASE("show by serial ignores case, colons and leading zeros") {
    SearchLog s;
    RecordQuery q;
    q.serial = "00:10:0A";  // sample_decision(10) has serial 100a
    auto found = s.find(q);
    REQUIRE(found.size() == 1);
    CHECK_THAT(found[0], ContainsSubstring("host10.example.com"));
}

TEST_CASE("show by node matches the name or a fingerprint prefix, and --limit keeps the latest") {
    SearchLog s;
    RecordQuery q;
    q.node = "node-b";
    CHECK(s.find(q).size() == 4);  // i = 0, 3, 6, 9

    q.node = std::string(8, 'B');  // node-b's fingerprint is all 'b'
    CHECK(s.find(q).size() == 4);
    q.node = "bbb";  // too short a prefix to mean a fingerprint
    CHECK(s.find(q).empty());

    q.node = "node-b";
    q.limit = 2;
    auto found = s.find(q);
    REQUIRE(found.size() == 2);
    CHECK_THAT(found[1], ContainsSubstring("host9.example.com"));
}

TEST_CASE("show combines criteria and filters by type") {
    SearchLog s;
    RecordQuery q;
    q.type = "checkpoint";
    CHECK_FALSE(s.find(q).empty());
    q.type = "service";
    CHECK(s.find(q).size() == 1);

    RecordQuery both;
    both.node = "node-a";
    both.name = "host3.example.com";  // host3 came from node-b
    CHECK(s.find(both).empty());
}

TEST_CASE("show on a missing log says so") {
    CHECK_THROWS_WITH(find_records("/nonexistent/audit", {}),
                      ContainsSubstring("no audit log at /nonexistent/audit"));
}
