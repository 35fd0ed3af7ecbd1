#include "protocol/errors.hpp"
#include "protocol/paths.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <set>
#include <string>

using Catch::Matchers::ContainsSubstring;
using protocol::Error;
using protocol::ErrorCode;

namespace {
constexpr int kCodeCount = static_cast<int>(ErrorCode::internal_error) + 1;
}

TEST_CASE("every error code has a unique snake_case wire string that maps back", "[protocol][errors]") {
    std::set<std::string> seen;
    for (int i = 0; i < kCodeCount; ++i) {
        const auto code = static_cast<ErrorCode>(i);
        const std::string text(protocol::to_string(code));
        INFO(text);
        CHECK(seen.insert(text).second);
        CHECK(text.find_first_not_of("abcdefghijklmnopqrstuvwxyz_") == std::string::npos);
        REQUIRE(protocol::error_code_from_string(text) == code);
    }
    CHECK(seen.size() == 26);
    CHECK_FALSE(protocol::error_code_from_string("Malformed_Request").has_value());
    CHECK_FALSE(protocol::error_code_from_string("").has_value());
}

TEST_CASE("wire strings of error codes are stable", "[protocol][errors]") {
    // Clients switch on these: renaming one is a protocol break.
    CHECK(protocol::to_string(ErrorCode::malformed_request) == "malformed_request");
    CHECK(protocol::to_string(ErrorCode::public_suffix) == "public_suffix");
    CHECK(protocol::to_string(ErrorCode::rate_limited) == "rate_limited");
    CHECK(protocol::to_string(ErrorCode::audit_unavailable) == "audit_unavailable");
    CHECK(protocol::to_string(ErrorCode::signer_unavailable) == "signer_unavailable");
}

TEST_CASE("error codes map to HTTP statuses", "[protocol][errors]") {
    CHECK(protocol::http_status(ErrorCode::malformed_request) == 400);
    CHECK(protocol::http_status(ErrorCode::unknown_field) == 400);
    CHECK(protocol::http_status(ErrorCode::invalid_name) == 400);
    CHECK(protocol::http_status(ErrorCode::public_suffix) == 400);
    CHECK(protocol::http_status(ErrorCode::weak_public_key) == 400);
    CHECK(protocol::http_status(ErrorCode::unauthenticated) == 401);
    CHECK(protocol::http_status(ErrorCode::name_denied) == 403);
    CHECK(protocol::http_status(ErrorCode::name_not_allowed) == 403);
    CHECK(protocol::http_status(ErrorCode::node_revoked) == 403);
    CHECK(protocol::http_status(ErrorCode::not_found) == 404);
    CHECK(protocol::http_status(ErrorCode::method_not_allowed) == 405);
    CHECK(protocol::http_status(ErrorCode::body_too_large) == 413);
    CHECK(protocol::http_status(ErrorCode::unsupported_media_type) == 415);
    CHECK(protocol::http_status(ErrorCode::rate_limited) == 429);
    CHECK(protocol::http_status(ErrorCode::internal_error) == 500);
    CHECK(protocol::http_status(ErrorCode::hsm_unavailable) == 503);
    CHECK(protocol::http_status(ErrorCode::signer_unavailable) == 503);
    CHECK(protocol::http_status(ErrorCode::audit_unavailable) == 503);
    for (int i = 0; i < kCodeCount; ++i) {
        const int status = protocol::http_status(static_cast<ErrorCode>(i));
        CHECK(status >= 400);
        CHECK(status <= 599);
    }
}

TEST_CASE("error bodies round-trip", "[protocol][errors]") {
    const Error error{ErrorCode::name_denied,
                      "name \"bank.example.com\" is refused by the deny rule \".example.com\""};
    const std::string body = protocol::encode_error(error);
    CHECK(
        body ==
        R"({"error":{"code":"name_denied","message":"name \"bank.example.com\" is refused by the deny rule \".example.com\""}})");
    REQUIRE(protocol::decode_error(body) == error);
}

TEST_CASE("error bodies with invalid UTF-8 in the message still encode", "[protocol][errors]") {
    const std::string body = protocol::encode_error({ErrorCode::invalid_name, "bad \xff byte"});
    auto decoded = protocol::decode_error(body);
    REQUIRE(decoded.has_value());
    CHECK(decoded->code == ErrorCode::invalid_name);
    CHECK_THAT(decoded->message, ContainsSubstring("bad "));
}

TEST_CASE("decode_error refuses anything but the exact error shape", "[protocol][errors]") {
    CHECK_FALSE(protocol::decode_error("").has_value());
    CHECK_FALSE(protocol::decode_error("not json").has_value());
    CHECK_FALSE(protocol::decode_error("[]").has_value());
    CHECK_FALSE(protocol::decode_error(R"({"error":"x"})").has_value());
    CHECK_FALSE(protocol::decode_error(R"({"error":{"code":"no_such_code","message":"m"}})").has_value());
    CHECK_FALSE(protocol::decode_error(R"({"error":{"code":"not_found"}})").has_value());
    CHECK_FALSE(protocol::decode_error(R"({"error":{"code":"not_found","message":1}})").has_value());
    CHECK_FALSE(protocol::decode_error(R"({"error":{"code":"not_found","message":"m","x":1}})").has_value());
    CHECK_FALSE(protocol::decode_error(R"({"error":{"code":"not_found","message":"m"},"x":1})").has_value());
    CHECK_FALSE(
        protocol::decode_error(R"({"error":{"code":"not_found","message":"m","message":"n"}})").has_value());
    CHECK(protocol::decode_error(R"( {"error":{"message":"m","code":"not_found"}} )") ==
          Error{ErrorCode::not_found, "m"});
}

TEST_CASE("paths are versioned constants", "[protocol][paths]") {
    CHECK(protocol::kLeafPath == "/v1/leaf");
    CHECK(protocol::kCaPath == "/v1/ca");
    CHECK(protocol::kHealthPath == "/healthz");
    CHECK(protocol::kMetricsPath == "/metrics");
    for (auto admin : {protocol::kAdminNodesPath, protocol::kAdminRevokePath, protocol::kAdminUnrevokePath,
                       protocol::kAdminAuditTailPath}) {
        CHECK(admin.starts_with(protocol::kAdminPrefix));
    }
}
