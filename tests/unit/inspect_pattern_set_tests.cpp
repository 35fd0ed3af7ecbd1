// inspect/pattern_set: multi-pattern search carried across arbitrary splits.

#include "inspect/pattern_set.hpp"
#include "inspect/rule_set.hpp"

#include <catch2/catch_test_macros.hpp>

#include <cstring>
#include <random>
#include <string>

using proxy::inspect::PatternSet;

namespace {

std::vector<std::uint8_t> bytes(const std::string& s) {
    return {s.begin(), s.end()};
}

std::span<const std::uint8_t> view(const std::string& s, std::size_t off, std::size_t len) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()) + off, len};
}

// Scans `text` split at the given cut points; the pattern index found, or kNoMatch.
int scan_split(const PatternSet& set, const std::string& text, std::vector<std::size_t> cuts) {
    cuts.push_back(text.size());
    PatternSet::State st = 0;
    std::size_t from = 0;
    for (std::size_t c : cuts) {
        if (int m = set.scan(st, view(text, from, c - from)); m != PatternSet::kNoMatch) return m;
        from = c;
    }
    return PatternSet::kNoMatch;
}

}  // namespace

TEST_CASE("the EICAR string is found at every split position, in any surrounding", "[inspect][matcher]") {
    const std::string eicar = proxy::inspect::eicar_test_string();
    REQUIRE(eicar.size() == 68);
    PatternSet set({bytes(eicar), bytes(std::string("MZ\x90\x00PE", 6))});
    const std::string text = std::string(1000, 'X') + "X5O!" + eicar + std::string(77, '\0');
    const std::size_t at = 1004;
    for (std::size_t cut = 0; cut <= eicar.size(); ++cut) {
        INFO("split after byte " << cut);
        CHECK(scan_split(set, text, {at + cut}) == 0);
        // and split into single bytes around the cut
        CHECK(scan_split(set, text, {at + cut / 2, at + cut}) == 0);
    }
    std::vector<std::size_t> every;
    for (std::size_t i = 1; i < text.size(); ++i) every.push_back(i);
    CHECK(scan_split(set, text, every) == 0);
    // One byte short, or one byte changed, is not a match.
    CHECK(scan_split(set, std::string(100, 'X') + eicar.substr(0, 67), {50}) == PatternSet::kNoMatch);
    std::string altered = eicar;
    altered[30] ^= 1;
    CHECK(scan_split(set, altered, {}) == PatternSet::kNoMatch);
}

TEST_CASE("several patterns with shared prefixes and suffixes; random data has no false hits",
          "[inspect][matcher]") {
    PatternSet set(
        {bytes("abcdef"), bytes("cdefgh"), bytes("bcdx"), bytes(std::string("\xff\xfe\x00\x01", 4))});
    CHECK(scan_split(set, "zzabcdefzz", {}) == 0);
    CHECK(scan_split(set, "zzabcdefgh", {5}) == 0);
    CHECK(scan_split(set, "zzabcdxgh", {3}) == 2);
    CHECK(scan_split(set, "xxcdefgh", {4}) == 1);
    CHECK(scan_split(set, std::string("..\xff\xfe\x00\x01..", 8), {3}) == 3);
    CHECK(scan_split(set, "abcdeabcdeabcde", {}) == PatternSet::kNoMatch);
    // Random bytes: compare with a naive search at random splits.
    std::mt19937 rng(42);
    std::string data(1 << 20, '\0');
    const std::string alphabet("abcdefgh\xff\xfe\x00\x01", 12);
    for (auto& c : data) c = alphabet[rng() % alphabet.size()];
    // The pattern whose first occurrence ends first (the patterns' last bytes differ, so no ties).
    const std::vector<std::string> pats = {"abcdef", "cdefgh", "bcdx", std::string("\xff\xfe\x00\x01", 4)};
    auto naive = [&](const std::string& s) {
        std::size_t best = std::string::npos;
        int which = PatternSet::kNoMatch;
        for (std::size_t i = 0; i < pats.size(); ++i)
            if (auto p = s.find(pats[i]);
                p != std::string::npos && (best == std::string::npos || p + pats[i].size() < best)) {
                best = p + pats[i].size();
                which = static_cast<int>(i);
            }
        return which;
    };
    for (int trial = 0; trial < 200; ++trial) {
        const std::size_t len = 64 + rng() % 4000;
        const std::size_t off = rng() % (data.size() - len);
        const std::string s = data.substr(off, len);
        std::vector<std::size_t> cuts;
        for (std::size_t c = 1 + rng() % 50; c < len; c += 1 + rng() % 50) cuts.push_back(c);
        INFO("trial " << trial);
        CHECK(scan_split(set, s, cuts) == naive(s));
    }
}

TEST_CASE("pattern limits are enforced", "[inspect][matcher]") {
    CHECK_THROWS_AS(PatternSet({bytes("abc")}), std::invalid_argument);
    CHECK_THROWS_AS(PatternSet({std::vector<std::uint8_t>(PatternSet::kMaxPatternBytes + 1, 'a')}),
                    std::invalid_argument);
    PatternSet none({});
    PatternSet::State st = 0;
    CHECK(none.empty());
    CHECK(none.scan(st, view("anything", 0, 8)) == PatternSet::kNoMatch);
}

TEST_CASE("many distinct first bytes (table skip) and few (memchr skip) find the same",
          "[inspect][matcher]") {
    std::vector<std::vector<std::uint8_t>> many;
    for (char c : std::string("123456789")) many.push_back(bytes(std::string(1, c) + "abc"));
    PatternSet table(many);
    PatternSet few({bytes("7abc"), bytes("9abc")});
    const std::string text = std::string(3000, 'x') + "7ab" + "9abx" + std::string(100, 'y') + "7abc" + "zz";
    for (std::size_t cut = 3000; cut < text.size(); ++cut) {
        CAPTURE(cut);
        CHECK(scan_split(table, text, {cut}) == 6);
        CHECK(scan_split(few, text, {cut}) == 0);
    }
    CHECK(scan_split(table, std::string(5000, 'x'), {17, 4000}) == PatternSet::kNoMatch);
    CHECK(scan_split(few, std::string(5000, '7'), {17, 4000}) == PatternSet::kNoMatch);
}
