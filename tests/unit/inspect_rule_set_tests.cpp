// inspect/rule_set: the integrated inspector's verdicts on streamed bodies.

#include "inspect/rule_set.hpp"
#include "inspect_feed.hpp"

#include "ossl/encoding.hpp"

#include <openssl/evp.h>

#include <catch2/catch_test_macros.hpp>

#include <optional>
#include <string>

using namespace proxy::inspect;
using namespace inspect_testing;

namespace {

std::vector<std::uint8_t> sha256(const std::string& s) {
    std::vector<std::uint8_t> d(32);
    unsigned len = 0;
    EVP_Digest(s.data(), s.size(), d.data(), &len, EVP_sha256(), nullptr);
    return d;
}

// Feeds `body` in pieces of `piece` bytes; the first decided verdict, else the final one.
Verdict inspect(const RuleSetInspector& rules, const std::string& body, std::size_t piece) {
    auto in = rules.begin(MessageInfo{});
    return feed_in_pieces(*in, body, piece);
}

}  // namespace

TEST_CASE("EICAR, a hex pattern and a text pattern block, named by rule, at any piece size",
          "[inspect][rules]") {
    proxy::InspectionSection cfg;
    cfg.patterns.emplace_back("mz-marker", std::vector<std::uint8_t>{0x4d, 0x5a, 0x90, 0x00, 0x03});
    cfg.patterns.emplace_back("secret-word",
                              std::vector<std::uint8_t>{'T', 'O', 'P', 'S', 'E', 'C', 'R', 'E', 'T'});
    RuleSetInspector rules(cfg);
    for (std::size_t piece : {1, 3, 64, 100000}) {
        INFO("piece " << piece);
        CHECK(inspect(rules, "junk " + eicar_test_string() + " junk", piece).rule == "eicar");
        CHECK(inspect(rules, std::string(5000, 'a') + std::string("\x4d\x5a\x90\x00\x03", 5), piece).rule ==
              "mz-marker");
        CHECK(inspect(rules, "this is TOPSECRET stuff", piece).rule == "secret-word");
        auto clean = inspect(rules, std::string(10000, 'z'), piece);
        CHECK(clean.kind == Verdict::Kind::allow);
    }
}

TEST_CASE("a SHA-256 rule blocks the whole body only, at the end", "[inspect][rules]") {
    const std::string file = "the file that must not pass\n" + std::string(70000, 'q');
    proxy::InspectionSection cfg;
    cfg.sha256.emplace_back("bad-file", sha256(file));
    RuleSetInspector rules(cfg);
    MessageInfo info;
    auto in = rules.begin(info);
    CHECK_FALSE(in->body(view(file.substr(0, 1000))).decided());
    CHECK_FALSE(in->body(view(file.substr(1000))).decided());
    std::optional<Verdict> v;
    in->finish([&](Verdict x) { v = x; });
    REQUIRE(v);
    CHECK(v->rule == "bad-file");
    CHECK(inspect(rules, file + "x", 4096).kind == Verdict::Kind::allow);
    CHECK(inspect(rules, file.substr(1), 4096).kind == Verdict::Kind::allow);
}

TEST_CASE("past max_scan_bytes: allow (rest unscanned) or block as configured", "[inspect][rules]") {
    proxy::InspectionSection cfg;
    cfg.max_scan_bytes = 1000;
    const std::string late = std::string(2000, 'a') + eicar_test_string();
    {
        RuleSetInspector rules(cfg);
        auto v = inspect(rules, late, 300);
        CHECK(v.kind == Verdict::Kind::allow);
        CHECK(v.note.find("max_scan_bytes") != std::string::npos);
        // within the limit it is still found
        CHECK(inspect(rules, std::string(900, 'a') + eicar_test_string(), 300).rule == "eicar");
    }
    cfg.over_limit_block = true;
    RuleSetInspector rules(cfg);
    CHECK(inspect(rules, late, 300).rule == "scan_limit");
    CHECK(inspect(rules, std::string(1000, 'a'), 300).kind == Verdict::Kind::allow);  // exactly the limit
    CHECK(rules.rule_names() == std::vector<std::string>{"eicar", "scan_limit"});
}
