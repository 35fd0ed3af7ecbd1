#include "policy/public_suffixes.hpp"

#include <catch2/catch_test_macros.hpp>

using ca::policy::is_public_suffix;
using ca::policy::registrable_domain;

TEST_CASE("common public suffixes are listed", "[policy][public_suffix]") {
    for (const char* suffix : {"com",
                               "net",
                               "org",
                               "io",
                               "dev",
                               "app",
                               "uk",
                               "de",
                               "jp",
                               "co.uk",
                               "org.uk",
                               "ac.uk",
                               "gov.uk",
                               "com.au",
                               "net.au",
                               "org.au",
                               "co.jp",
                               "ne.jp",
                               "or.jp",
                               "co.nz",
                               "com.br",
                               "com.cn",
                               "co.in",
                               "co.za",
                               "com.mx",
                               "com.tr",
                               "github.io",
                               "herokuapp.com",
                               "blogspot.com",
                               "appspot.com",
                               "cloudfront.net",
                               "azurewebsites.net",
                               "s3.amazonaws.com"}) {
        INFO(suffix);
        CHECK(is_public_suffix(suffix));
    }
    CHECK(ca::policy::builtin_public_suffix_count() > 300);
}

TEST_CASE("registered domains are not public suffixes", "[policy][public_suffix]") {
    for (const char* name : {"example.com", "github.com", "amazonaws.com", "example.co.uk", "user.github.io",
                             "co.uk.example.com", "COM", "com.", ""}) {
        INFO(name);
        CHECK_FALSE(is_public_suffix(name));
    }
}

TEST_CASE("registrable domain is the public suffix plus one label", "[policy][public_suffix]") {
    CHECK(registrable_domain("www.example.com") == "example.com");
    CHECK(registrable_domain("example.com") == "example.com");
    CHECK(registrable_domain("a.b.www.example.co.uk") == "example.co.uk");
    CHECK(registrable_domain("user.github.io") == "user.github.io");
    CHECK(registrable_domain("a.b.user.github.io") == "user.github.io");
    CHECK(registrable_domain("bucket.s3.amazonaws.com") == "bucket.s3.amazonaws.com");
    CHECK(registrable_domain("www.amazonaws.com") == "amazonaws.com");
    // Unlisted top-level labels count as public suffixes (the PSL's default rule).
    CHECK(registrable_domain("host.corp.internal") == "corp.internal");
    CHECK_FALSE(registrable_domain("com").has_value());
    CHECK_FALSE(registrable_domain("co.uk").has_value());
    CHECK_FALSE(registrable_domain("github.io").has_value());
    CHECK_FALSE(registrable_domain("internal").has_value());
}
