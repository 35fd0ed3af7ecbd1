#include "policy/public_key.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <string>

using ca::policy::AcceptedKey;
using Catch::Matchers::ContainsSubstring;
using protocol::Error;
using protocol::ErrorCode;

namespace test_keys {  // policy_test_keys.cpp
ossl::Bytes generated(const std::string& type, const std::string& arg);
ossl::Bytes rsa_from_parts(const ossl::Bytes& modulus, unsigned long exponent);
}  // namespace test_keys

namespace {

AcceptedKey accepted(const ossl::Bytes& der, unsigned min_rsa_bits = ca::policy::kMinRsaBits) {
    auto result = ca::policy::check_public_key(der, min_rsa_bits);
    if (const auto* error = std::get_if<Error>(&result)) FAIL(error->message);
    return std::get<AcceptedKey>(result);
}

Error refused(const ossl::Bytes& der, ErrorCode code, unsigned min_rsa_bits = ca::policy::kMinRsaBits) {
    auto result = ca::policy::check_public_key(der, min_rsa_bits);
    REQUIRE(std::holds_alternative<Error>(result));
    const Error& error = std::get<Error>(result);
    INFO(error.message);
    CHECK(protocol::to_string(error.code) == protocol::to_string(code));
    return error;
}

// A 2048-bit odd number: a plausible modulus for checks that do not factor it.
ossl::Bytes odd_modulus(std::size_t bytes = 256) {
    ossl::Bytes n(bytes, 0x5b);
    n.front() = 0xc1;
    n.back() = 0x01;
    return n;
}

}  // namespace

TEST_CASE("EC P-256 and P-384 keys are accepted as sent", "[policy][public_key]") {
    const auto p256 = test_keys::generated("EC", "P-256");
    const auto key = accepted(p256);
    CHECK(key.description == "EC P-256");
    CHECK(key.spki_der == p256);
    CHECK(accepted(test_keys::generated("EC", "P-384")).description == "EC P-384");
}

TEST_CASE("RSA keys need at least the minimum size", "[policy][public_key]") {
    const auto rsa2048 = test_keys::generated("RSA", "2048");
    CHECK(accepted(rsa2048).description == "RSA 2048");
    CHECK_THAT(refused(test_keys::generated("RSA", "1024"), ErrorCode::weak_public_key).message,
               ContainsSubstring("1024 bits is too weak"));
    CHECK_THAT(refused(rsa2048, ErrorCode::weak_public_key, 3072).message,
               ContainsSubstring("at least 3072"));
}

TEST_CASE("RSA public exponent and modulus sanity", "[policy][public_key]") {
    CHECK(accepted(test_keys::rsa_from_parts(odd_modulus(), 65537)).description == "RSA 2048");
    CHECK(accepted(test_keys::rsa_from_parts(odd_modulus(), 3)).description == "RSA 2048");
    CHECK_THAT(refused(test_keys::rsa_from_parts(odd_modulus(), 1), ErrorCode::weak_public_key).message,
               ContainsSubstring("exponent"));
    refused(test_keys::rsa_from_parts(odd_modulus(), 65536), ErrorCode::weak_public_key);
    ossl::Bytes even = odd_modulus();
    even.back() = 0x02;
    CHECK_THAT(refused(test_keys::rsa_from_parts(even, 65537), ErrorCode::invalid_public_key).message,
               ContainsSubstring("even"));
}

TEST_CASE("other key types and curves are weak_public_key", "[policy][public_key]") {
    CHECK_THAT(refused(test_keys::generated("EC", "P-521"), ErrorCode::weak_public_key).message,
               ContainsSubstring("secp521r1 is not accepted"));
    refused(test_keys::generated("EC", "secp256k1"), ErrorCode::weak_public_key);
    CHECK_THAT(refused(test_keys::generated("ED25519", ""), ErrorCode::weak_public_key).message,
               ContainsSubstring("P-256"));
}

TEST_CASE("keys that do not parse are invalid_public_key", "[policy][public_key]") {
    refused({}, ErrorCode::invalid_public_key);
    CHECK_THAT(refused({0x30, 0x03, 0x02, 0x01, 0x01}, ErrorCode::invalid_public_key).message,
               ContainsSubstring("SubjectPublicKeyInfo"));
    auto trailing = test_keys::generated("EC", "P-256");
    trailing.push_back(0x00);
    CHECK_THAT(refused(trailing, ErrorCode::invalid_public_key).message, ContainsSubstring("1 bytes after"));
    auto truncated = test_keys::generated("EC", "P-256");
    truncated.pop_back();
    refused(truncated, ErrorCode::invalid_public_key);
    // A P-256 point moved off the curve.
    auto off_curve = test_keys::generated("EC", "P-256");
    off_curve.back() ^= 0x01;
    refused(off_curve, ErrorCode::invalid_public_key);
}
