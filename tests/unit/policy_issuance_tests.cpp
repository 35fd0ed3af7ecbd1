#include "policy/issuance_policy.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <stdexcept>
#include <string>

using ca::policy::ApprovedLeaf;
using ca::policy::IssuancePolicy;
using ca::policy::PolicyConfig;
using Catch::Matchers::ContainsSubstring;
using protocol::Error;
using protocol::ErrorCode;
using protocol::LeafRequest;
using namespace std::chrono_literals;

namespace test_keys {  // policy_test_keys.cpp
ossl::Bytes generated(const std::string& type, const std::string& arg);
}  // namespace test_keys

namespace {

LeafRequest request(std::vector<std::string> names, std::optional<std::uint32_t> lifetime = std::nullopt) {
    return LeafRequest{std::move(names), test_keys::generated("EC", "P-256"), lifetime};
}

ApprovedLeaf approved(const IssuancePolicy& policy, const LeafRequest& req) {
    auto result = policy.evaluate(req);
    if (const auto* error = std::get_if<Error>(&result))
        FAIL(protocol::to_string(error->code) << ": " << error->message);
    return std::get<ApprovedLeaf>(result);
}

Error refused(const IssuancePolicy& policy, const LeafRequest& req, ErrorCode code) {
    auto result = policy.evaluate(req);
    REQUIRE(std::holds_alternative<Error>(result));
    const Error& error = std::get<Error>(result);
    INFO(error.message);
    CHECK(protocol::to_string(error.code) == protocol::to_string(code));
    return error;
}

PolicyConfig with(auto change) {
    PolicyConfig config;
    change(config);
    return config;
}

}  // namespace

TEST_CASE("a plain request is approved with normalised names and defaults", "[policy][issuance]") {
    const IssuancePolicy policy{PolicyConfig{}};
    const auto leaf = approved(policy, request({"Example.COM", "www.example.com.", "*.example.org"}));
    CHECK(leaf.dns_names == std::vector<std::string>{"example.com", "www.example.com", "*.example.org"});
    CHECK(leaf.names == leaf.dns_names);
    CHECK(leaf.ip_addresses.empty());
    CHECK(leaf.lifetime == 12h);
    CHECK_FALSE(leaf.lifetime_capped);
    CHECK(leaf.backdate == 5min);
    CHECK(leaf.spki_der == test_keys::generated("EC", "P-256"));
    CHECK(leaf.key_description == "EC P-256");
}

TEST_CASE("IP addresses are refused unless the policy allows them", "[policy][issuance][ip]") {
    CHECK_THAT(refused(IssuancePolicy{PolicyConfig{}}, request({"example.com", "192.0.2.1"}),
                       ErrorCode::ip_not_allowed)
                   .message,
               ContainsSubstring("\"192.0.2.1\""));
    const IssuancePolicy policy{with([](auto& c) { c.allow_ip_addresses = true; })};
    const auto leaf = approved(policy, request({"2001:DB8::1", "example.com", "192.0.2.1"}));
    CHECK(leaf.dns_names == std::vector<std::string>{"example.com"});
    REQUIRE(leaf.ip_addresses.size() == 2);
    CHECK(leaf.ip_addresses[0].size() == 16);
    CHECK(leaf.ip_addresses[1] == ossl::Bytes{192, 0, 2, 1});
    CHECK(leaf.names == std::vector<std::string>{"2001:db8::1", "example.com", "192.0.2.1"});
    refused(policy, request({"999.1.1.1"}), ErrorCode::invalid_name);
    refused(policy, request({"1.2.3"}), ErrorCode::invalid_name);
}

TEST_CASE("the number of names is capped by the policy", "[policy][issuance][limits]") {
    const IssuancePolicy policy{with([](auto& c) { c.max_names = 3; })};
    approved(policy, request({"a.example.com", "b.example.com", "c.example.com"}));
    CHECK_THAT(refused(policy, request({"a.example.com", "b.example.com", "c.example.com", "d.example.com"}),
                       ErrorCode::too_many_names)
                   .message,
               ContainsSubstring("at most 3"));
    std::vector<std::string> twenty_one;
    for (int i = 0; i < 21; ++i) twenty_one.push_back("h" + std::to_string(i) + ".example.com");
    refused(IssuancePolicy{PolicyConfig{}}, request(twenty_one), ErrorCode::too_many_names);
    twenty_one.pop_back();
    approved(IssuancePolicy{PolicyConfig{}}, request(twenty_one));
    refused(IssuancePolicy{PolicyConfig{}}, request({}), ErrorCode::invalid_field);
}

TEST_CASE("names repeated after normalisation are refused", "[policy][issuance]") {
    const IssuancePolicy policy{with([](auto& c) { c.allow_ip_addresses = true; })};
    CHECK_THAT(refused(policy, request({"example.com", "EXAMPLE.com."}), ErrorCode::duplicate_name).message,
               ContainsSubstring("\"example.com\" is requested twice"));
    refused(policy, request({"::1", "0:0:0::1"}), ErrorCode::duplicate_name);
    refused(policy, request({"*.example.com", "*.Example.Com"}), ErrorCode::duplicate_name);
    approved(policy, request({"*.example.com", "example.com", "www.example.com"}));
}

TEST_CASE("public suffixes and wildcards over them are refused", "[policy][issuance][public_suffix]") {
    const IssuancePolicy policy{PolicyConfig{}};
    for (const char* name : {"co.uk", "github.io", "s3.amazonaws.com", "com.au", "*.com", "*.co.uk",
                             "*.github.io", "*.internal", "run.app", "*.run.app", "cloudfunctions.net",
                             "*.cloudfunctions.net", "com.np", "*.com.np", "xn--55qx5d.cn", "*.xn--55qx5d.cn"}) {
        INFO(name);
        refused(policy, request({name}), ErrorCode::public_suffix);
    }
    CHECK_THAT(refused(policy, request({"*.co.uk"}), ErrorCode::public_suffix).message,
               ContainsSubstring("over the public suffix \"co.uk\""));
    // Single labels never reach the suffix check: they are not host names at all.
    refused(policy, request({"com"}), ErrorCode::invalid_name);
    approved(policy, request({"example.co.uk", "*.example.co.uk", "user.github.io", "*.user.github.io"}));
    approved(policy, request({"svc.run.app", "*.shop.com.np", "city.kawasaki.jp"}));
}

TEST_CASE("a policy without a readable public suffix list is refused at start", "[policy][issuance][public_suffix]") {
    PolicyConfig config;
    config.public_suffix_list = "/nonexistent/public_suffix_list.dat";
    CHECK_THROWS_WITH(IssuancePolicy{config}, ContainsSubstring("/nonexistent/public_suffix_list.dat"));
}

TEST_CASE("wildcard placement and the wildcard switch", "[policy][issuance][wildcard]") {
    const IssuancePolicy allowing{PolicyConfig{}};
    approved(allowing, request({"*.example.com"}));
    for (const char* name : {"a.*.b.com", "*a.example.com", "**.example.com", "*.*.example.com"}) {
        INFO(name);
        refused(allowing, request({name}), ErrorCode::invalid_name);
    }
    const IssuancePolicy refusing{with([](auto& c) { c.allow_wildcards = false; })};
    CHECK_THAT(
        refused(refusing, request({"www.example.com", "*.example.com"}), ErrorCode::wildcard_not_allowed)
            .message,
        ContainsSubstring("\"*.example.com\""));
    approved(refusing, request({"www.example.com"}));
}

TEST_CASE("deny rules win over allow rules", "[policy][issuance][patterns]") {
    const IssuancePolicy policy{with([](auto& c) {
        c.allowed_names = {".example.com"};
        c.denied_names = {"bank.example.com", ".ru"};
    })};
    approved(policy, request({"example.com", "www.example.com"}));
    CHECK_THAT(
        refused(policy, request({"www.example.com", "BANK.example.com"}), ErrorCode::name_denied).message,
        ContainsSubstring("\"bank.example.com\" is refused by the deny rule \"bank.example.com\""));
    // The wildcard would cover the denied name.
    refused(policy, request({"*.example.com"}), ErrorCode::name_denied);
    approved(policy, request({"*.www.example.com"}));
    refused(policy, request({"mail.example.ru"}), ErrorCode::name_denied);
}

TEST_CASE("with an allow list, other names are not allowed", "[policy][issuance][patterns]") {
    const IssuancePolicy policy{with([](auto& c) {
        c.allowed_names = {"*.corp.example", "www.example.com"};
    })};
    approved(policy, request({"a.corp.example", "x.y.corp.example", "*.corp.example", "www.example.com"}));
    CHECK_THAT(refused(policy, request({"corp.example"}), ErrorCode::name_not_allowed).message,
               ContainsSubstring("\"corp.example\" matches none of the 2 allowed"));
    refused(policy, request({"example.com"}), ErrorCode::name_not_allowed);
    refused(policy, request({"*.example.com"}), ErrorCode::name_not_allowed);
    refused(policy, request({"www.example.com.evil.net"}), ErrorCode::name_not_allowed);
}

TEST_CASE("an empty allow list allows every name not denied", "[policy][issuance][patterns]") {
    const IssuancePolicy policy{with([](auto& c) { c.denied_names = {"*.internal.example"}; })};
    approved(policy, request({"anything.example.net", "internal.example"}));
    refused(policy, request({"db.internal.example"}), ErrorCode::name_denied);
}

TEST_CASE("raw UTF-8 names are refused with a hint", "[policy][issuance][idna]") {
    CHECK_THAT(refused(IssuancePolicy{PolicyConfig{}},
                       request({"b\xc3\xbc"
                                "cher.example"}),
                       ErrorCode::invalid_name)
                   .message,
               ContainsSubstring("A-label"));
}

TEST_CASE("the first offending name is reported", "[policy][issuance]") {
    CHECK_THAT(refused(IssuancePolicy{PolicyConfig{}},
                       request({"ok.example.com", "bad_name.example.com", "co.uk"}), ErrorCode::invalid_name)
                   .message,
               ContainsSubstring("bad_name.example.com"));
}

TEST_CASE("lifetime: requested, default, capped or refused", "[policy][issuance][lifetime]") {
    const IssuancePolicy policy{PolicyConfig{}};
    CHECK(approved(policy, request({"example.com"}, 3600)).lifetime == 1h);
    CHECK(approved(policy, request({"example.com"})).lifetime == 12h);
    const auto at_max = approved(policy, request({"example.com"}, 86400));
    CHECK(at_max.lifetime == 24h);
    CHECK_FALSE(at_max.lifetime_capped);
    const auto capped = approved(policy, request({"example.com"}, 86401));
    CHECK(capped.lifetime == 24h);
    CHECK(capped.lifetime_capped);

    const IssuancePolicy strict{with([](auto& c) { c.refuse_overlong_lifetime = true; })};
    CHECK_THAT(refused(strict, request({"example.com"}, 86401), ErrorCode::lifetime_too_long).message,
               ContainsSubstring("maximum of 86400"));
    approved(strict, request({"example.com"}, 86400));
    const IssuancePolicy short_lived{with([](auto& c) {
        c.max_lifetime = 2h;
        c.default_lifetime = 30min;
        c.backdate = 0s;
    })};
    const auto leaf = approved(short_lived, request({"example.com"}));
    CHECK(leaf.lifetime == 30min);
    CHECK(leaf.backdate == 0s);
}

TEST_CASE("weak and invalid keys are refused", "[policy][issuance][public_key]") {
    const IssuancePolicy policy{PolicyConfig{}};
    refused(policy, LeafRequest{{"example.com"}, test_keys::generated("RSA", "1024"), {}},
            ErrorCode::weak_public_key);
    refused(policy, LeafRequest{{"example.com"}, {1, 2, 3}, {}}, ErrorCode::invalid_public_key);
    CHECK(approved(policy, LeafRequest{{"example.com"}, test_keys::generated("RSA", "2048"), {}})
              .key_description == "RSA 2048");
}

TEST_CASE("inconsistent configuration is refused at construction", "[policy][issuance][config]") {
    const auto refuses = [](auto change, const char* expected) {
        INFO(expected);
        CHECK_THROWS_WITH(IssuancePolicy{with(change)}, ContainsSubstring(expected));
    };
    refuses([](auto& c) { c.max_names = 0; }, "max_names is 0");
    refuses([](auto& c) { c.max_names = protocol::kMaxNames + 1; }, "between 1 and 100");
    refuses([](auto& c) { c.max_lifetime = 0s; }, "max_lifetime");
    refuses([](auto& c) { c.max_lifetime = std::chrono::seconds{protocol::kMaxLifetimeSeconds + 1}; },
            "max_lifetime");
    refuses([](auto& c) { c.default_lifetime = 25h; }, "default_lifetime");
    refuses([](auto& c) { c.default_lifetime = 0s; }, "default_lifetime");
    refuses([](auto& c) { c.backdate = -1s; }, "backdate");
    refuses([](auto& c) { c.backdate = 25h; }, "backdate");
    refuses([](auto& c) { c.min_rsa_bits = 1024; }, "min_rsa_bits");
    refuses([](auto& c) { c.allowed_names = {"example.com", "a.*.example.com"}; }, "allowed_names[1]");
    refuses([](auto& c) { c.denied_names = {""}; }, "denied_names[0]");
    CHECK_THROWS_AS(IssuancePolicy{with([](auto& c) { c.max_names = 0; })}, std::invalid_argument);
    CHECK_NOTHROW(IssuancePolicy{with([](auto& c) {
        c.max_names = protocol::kMaxNames;
        c.max_lifetime = std::chrono::seconds{protocol::kMaxLifetimeSeconds};
    })});
}
