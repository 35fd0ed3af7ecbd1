#include "policy/public_suffixes.hpp"

#include "support/audit_fixtures.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <fstream>
#include <stdexcept>

using Catch::Matchers::ContainsSubstring;
using ca::policy::PublicSuffixList;

namespace {

const PublicSuffixList& debian_list() {
    static const auto list = PublicSuffixList::load(std::string(ca::policy::kDefaultPublicSuffixList));
    return *list;
}

}  // namespace

TEST_CASE("Debian's Public Suffix List is read whole, private section included", "[policy][public_suffix]") {
    const auto& list = debian_list();
    // The 2023 list has ~9,000 rules and ~8 exceptions; a truncated read would have far fewer.
    CHECK(list.rule_count() > 5000);
    CHECK(list.exception_count() >= 5);
    for (const char* suffix : {"com", "net", "org", "io", "dev", "app", "uk", "de", "jp", "co.uk", "org.uk",
                               "ac.uk", "gov.uk", "com.au", "co.jp", "ne.jp", "com.br", "com.cn", "co.za",
                               // private section: hosting providers
                               "github.io", "herokuapp.com", "blogspot.com", "appspot.com", "cloudfront.net",
                               "azurewebsites.net", "s3.amazonaws.com", "run.app", "cloudfunctions.net",
                               // wildcard rules: *.np, *.ck, *.kawasaki.jp
                               "com.np", "anything.np", "co.ck", "city2.kawasaki.jp",
                               // an IDN rule, matched in its A-label form (公司.cn)
                               "xn--55qx5d.cn"}) {
        INFO(suffix);
        CHECK(list.is_public_suffix(suffix));
        CHECK(list.is_public_suffix(suffix, false));
        CHECK_FALSE(list.registrable_domain(suffix).has_value());
    }
}

TEST_CASE("registered domains are not public suffixes, exceptions included", "[policy][public_suffix]") {
    const auto& list = debian_list();
    for (const char* name : {"example.com", "github.com", "amazonaws.com", "example.co.uk", "user.github.io",
                             "co.uk.example.com", "www.ck", "city.kawasaki.jp", "shop.com.np", ""}) {
        INFO(name);
        CHECK_FALSE(list.is_public_suffix(name));
    }
    // An unlisted top-level label is a suffix only under the PSL's implicit "*" rule.
    CHECK(list.is_public_suffix("internal"));
    CHECK_FALSE(list.is_public_suffix("internal", false));
}

TEST_CASE("registrable domain is the public suffix plus one label", "[policy][public_suffix]") {
    const auto& list = debian_list();
    CHECK(list.registrable_domain("www.example.com") == "example.com");
    CHECK(list.registrable_domain("example.com") == "example.com");
    CHECK(list.registrable_domain("a.b.www.example.co.uk") == "example.co.uk");
    CHECK(list.registrable_domain("a.b.user.github.io") == "user.github.io");
    CHECK(list.registrable_domain("bucket.s3.amazonaws.com") == "bucket.s3.amazonaws.com");
    CHECK(list.registrable_domain("www.amazonaws.com") == "amazonaws.com");
    CHECK(list.registrable_domain("svc.run.app") == "svc.run.app");
    CHECK(list.registrable_domain("www.shop.com.np") == "shop.com.np");
    // Exceptions: www.ck and city.kawasaki.jp are registrable although *.ck and
    // *.kawasaki.jp are wildcard rules.
    CHECK(list.registrable_domain("a.www.ck") == "www.ck");
    CHECK(list.registrable_domain("city.kawasaki.jp") == "city.kawasaki.jp");
    CHECK(list.registrable_domain("host.corp.internal") == "corp.internal");
    CHECK_FALSE(list.registrable_domain("internal").has_value());
}

TEST_CASE("a missing, empty or foreign list fails closed with the file's name", "[policy][public_suffix]") {
    testing_support::TempDir dir("psl-test");
    CHECK_THROWS_WITH(PublicSuffixList::load(dir.path() / "absent.dat"),
                      ContainsSubstring("absent.dat is not a readable file") &&
                          ContainsSubstring("publicsuffix package"));
    const auto empty = dir.path() / "empty.dat";
    std::ofstream(empty) << "// nothing here\n";
    CHECK_THROWS_WITH(PublicSuffixList::load(empty), ContainsSubstring("holds no usable rules"));
    const auto tiny = dir.path() / "tiny.dat";
    std::ofstream(tiny) << "com\nexample\n";
    const auto list = PublicSuffixList::load(tiny);
    CHECK(list->is_public_suffix("example"));
    CHECK(list->registrable_domain("www.co.uk") == "co.uk");  // co.uk is not in this file
}
