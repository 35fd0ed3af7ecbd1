#include "protocol/leaf.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <nlohmann/json.hpp>

#include <string>

using Catch::Matchers::ContainsSubstring;
using protocol::Error;
using protocol::ErrorCode;
using protocol::LeafRequest;
using protocol::LeafResponse;

namespace {

// "AQID" is base64 for 01 02 03: the decoder does not look inside the key.
constexpr const char* kKey = R"("public_key":"AQID")";

template <class T>
T expect_value(const protocol::Decoded<T>& decoded) {
    if (const auto* error = std::get_if<Error>(&decoded)) {
        FAIL("decoding failed: " << protocol::to_string(error->code) << ": " << error->message);
    }
    return std::get<T>(decoded);
}

template <class T>
Error expect_error(const protocol::Decoded<T>& decoded, ErrorCode code) {
    REQUIRE(std::holds_alternative<Error>(decoded));
    const Error& error = std::get<Error>(decoded);
    INFO(error.message);
    CHECK(protocol::to_string(error.code) == protocol::to_string(code));
    CHECK_FALSE(error.message.empty());
    return error;
}

Error request_error(const std::string& body, ErrorCode code) {
    return expect_error(protocol::decode_leaf_request(body), code);
}

std::string request_with(const std::string& field) {
    return R"({"names":["example.com"],)" + std::string(kKey) + "," + field + "}";
}

const std::string kPem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

LeafResponse sample_response() {
    return LeafResponse{kPem, {kPem}, "0123456789abcdef", "2024-05-01T12:00:00Z", "2024-05-02T12:00:00Z", 42};
}

std::string response_without(const std::string& field) {
    nlohmann::json doc = nlohmann::json::parse(protocol::encode_leaf_response(sample_response()));
    doc.erase(field);
    return doc.dump();
}

std::string response_with(const std::string& field, const nlohmann::json& value) {
    nlohmann::json doc = nlohmann::json::parse(protocol::encode_leaf_response(sample_response()));
    doc[field] = value;
    return doc.dump();
}

}  // namespace

TEST_CASE("a valid leaf request decodes", "[protocol][leaf]") {
    const auto request = expect_value(protocol::decode_leaf_request(
        R"({"names": ["example.com", "www.example.com"], "public_key": "AQID", "lifetime_seconds": 3600})"));
    CHECK(request.names == std::vector<std::string>{"example.com", "www.example.com"});
    CHECK(request.public_key == ossl::Bytes{1, 2, 3});
    CHECK(request.lifetime_seconds == 3600U);
}

TEST_CASE("lifetime_seconds is optional", "[protocol][leaf]") {
    const auto request =
        expect_value(protocol::decode_leaf_request(R"({"public_key":"AQID","names":["a.example"]})"));
    CHECK_FALSE(request.lifetime_seconds.has_value());
}

TEST_CASE("leaf requests round-trip", "[protocol][leaf]") {
    const LeafRequest with_lifetime{
        {"example.com", "*.example.com", "192.0.2.1"}, {0x30, 0x59, 0x00, 0xff}, 7200};
    CHECK(expect_value(protocol::decode_leaf_request(protocol::encode_leaf_request(with_lifetime))) ==
          with_lifetime);
    const LeafRequest without{{"example.com"}, {1}, std::nullopt};
    const std::string body = protocol::encode_leaf_request(without);
    CHECK(body == R"({"names":["example.com"],"public_key":"AQ=="})");
    CHECK(expect_value(protocol::decode_leaf_request(body)) == without);
}

TEST_CASE("leaf request bodies over the limit are refused before parsing", "[protocol][leaf][limits]") {
    std::string body = request_with(R"("lifetime_seconds":60)");
    // Whitespace padding keeps it valid JSON: only the size decides.
    body.insert(1, protocol::kMaxBodyBytes - body.size(), ' ');
    REQUIRE(body.size() == protocol::kMaxBodyBytes);
    expect_value(protocol::decode_leaf_request(body));
    body.insert(1, " ");
    const Error error = request_error(body, ErrorCode::body_too_large);
    CHECK_THAT(error.message, ContainsSubstring("16384"));
    request_error(std::string(protocol::kMaxBodyBytes + 1, '{'), ErrorCode::body_too_large);
}

TEST_CASE("invalid JSON is malformed_request with the position", "[protocol][leaf]") {
    CHECK_THAT(request_error(R"({"names": [tru]})", ErrorCode::malformed_request).message,
               ContainsSubstring("byte"));
    request_error("", ErrorCode::malformed_request);
    request_error("   ", ErrorCode::malformed_request);
    request_error(R"({"names":["a.example"],"public_key":"AQID"} trailing)", ErrorCode::malformed_request);
    request_error(R"({"names":["a.example"],"public_key":"AQID",})", ErrorCode::malformed_request);
    request_error(R"({"names":["a.example"],/*c*/"public_key":"AQID"})", ErrorCode::malformed_request);
    request_error("{\"names\":[\"a.example\xff\"],\"public_key\":\"AQID\"}", ErrorCode::malformed_request);
    request_error(std::string("{\"names\":[\"a.example\"]\0,\"public_key\":\"AQID\"}", 43),
                  ErrorCode::malformed_request);
    request_error(R"({"lifetime_seconds": 1e999, "names":["a.example"],"public_key":"AQID"})",
                  ErrorCode::malformed_request);
}

TEST_CASE("the top level must be an object", "[protocol][leaf]") {
    for (const char* body : {"[]", "\"x\"", "1", "null", "true"}) {
        INFO(body);
        CHECK_THAT(request_error(body, ErrorCode::malformed_request).message,
                   ContainsSubstring("JSON object"));
    }
}

TEST_CASE("unknown fields are refused by name", "[protocol][leaf]") {
    const Error error = request_error(request_with(R"("is_ca":true)"), ErrorCode::unknown_field);
    CHECK_THAT(error.message, ContainsSubstring("\"is_ca\""));
    CHECK_THAT(error.message, ContainsSubstring("names, public_key, lifetime_seconds"));
    // Field names are case-sensitive.
    request_error(R"({"Names":["a.example"],"public_key":"AQID"})", ErrorCode::unknown_field);
}

TEST_CASE("duplicate keys are refused", "[protocol][leaf]") {
    const Error error =
        request_error(R"({"names":["a.example"],"public_key":"AQID","names":["evil.example"]})",
                      ErrorCode::malformed_request);
    CHECK_THAT(error.message, ContainsSubstring("\"names\" appears twice"));
    request_error(R"({"names":["a.example"],"public_key":"AQID","public_key":"AQID"})",
                  ErrorCode::malformed_request);
}

TEST_CASE("nesting depth is bounded", "[protocol][leaf][limits]") {
    std::string deep = R"({"names":)" + std::string(protocol::kMaxJsonDepth, '[') + R"("a.example")" +
                       std::string(protocol::kMaxJsonDepth, ']') + "," + kKey + "}";
    CHECK_THAT(request_error(deep, ErrorCode::malformed_request).message, ContainsSubstring("nesting"));
    // Far deeper than any stack could take if the decoder recursed.
    request_error(std::string(protocol::kMaxBodyBytes, '['), ErrorCode::malformed_request);
    // Just within the bound the structure is fine and the type is wrong instead.
    std::string ok_depth = R"({"names":)" + std::string(protocol::kMaxJsonDepth - 1, '[') + R"("a.example")" +
                           std::string(protocol::kMaxJsonDepth - 1, ']') + "," + kKey + "}";
    request_error(ok_depth, ErrorCode::invalid_field);
}

TEST_CASE("required fields must be present", "[protocol][leaf]") {
    CHECK_THAT(request_error(R"({"public_key":"AQID"})", ErrorCode::invalid_field).message,
               ContainsSubstring("\"names\" is missing"));
    CHECK_THAT(request_error(R"({"names":["a.example"]})", ErrorCode::invalid_field).message,
               ContainsSubstring("\"public_key\" is missing"));
    request_error("{}", ErrorCode::invalid_field);
}

TEST_CASE("names must be a non-empty array of strings", "[protocol][leaf]") {
    CHECK_THAT(
        request_error(R"({"names":"a.example",)" + std::string(kKey) + "}", ErrorCode::invalid_field).message,
        ContainsSubstring("\"names\" must be an array of strings, not a string"));
    CHECK_THAT(request_error(R"({"names":[],)" + std::string(kKey) + "}", ErrorCode::invalid_field).message,
               ContainsSubstring("empty"));
    CHECK_THAT(
        request_error(R"({"names":["a.example", 7],)" + std::string(kKey) + "}", ErrorCode::invalid_field)
            .message,
        ContainsSubstring("names[1] must be a string, not an integer"));
    request_error(R"({"names":[null],)" + std::string(kKey) + "}", ErrorCode::invalid_field);
    request_error(R"({"names":{"a":"b"},)" + std::string(kKey) + "}", ErrorCode::invalid_field);
}

TEST_CASE("name count is capped by the protocol", "[protocol][leaf][limits]") {
    auto body_with = [](std::size_t count) {
        std::string names;
        for (std::size_t i = 0; i < count; ++i)
            names += (i ? "," : "") + ("\"h" + std::to_string(i) + ".example\"");
        return R"({"names":[)" + names + "]," + kKey + "}";
    };
    CHECK(expect_value(protocol::decode_leaf_request(body_with(protocol::kMaxNames))).names.size() ==
          protocol::kMaxNames);
    CHECK_THAT(request_error(body_with(protocol::kMaxNames + 1), ErrorCode::too_many_names).message,
               ContainsSubstring("at most 100"));
}

TEST_CASE("each name is 1 to 253 bytes without control characters", "[protocol][leaf][limits]") {
    auto body_with = [](const std::string& name) { return R"({"names":[")" + name + R"("],)" + kKey + "}"; };
    expect_value(protocol::decode_leaf_request(body_with(std::string(protocol::kMaxNameLength, 'a'))));
    CHECK_THAT(
        request_error(body_with(std::string(protocol::kMaxNameLength + 1, 'a')), ErrorCode::invalid_name)
            .message,
        ContainsSubstring("254 bytes"));
    CHECK_THAT(request_error(body_with(""), ErrorCode::invalid_name).message,
               ContainsSubstring("names[0] is empty"));
    CHECK_THAT(request_error(body_with(R"(a\u0000.example)"), ErrorCode::invalid_name).message,
               ContainsSubstring("control character at byte 1"));
    request_error(body_with(R"(a.example\n)"), ErrorCode::invalid_name);
    request_error(body_with(R"(a\u007f.example)"), ErrorCode::invalid_name);
    // Syntax beyond that is the policy's business: the decoder passes it through.
    CHECK(expect_value(protocol::decode_leaf_request(body_with("NOT a name!"))).names[0] == "NOT a name!");
}

TEST_CASE("public_key must be strict base64 of bounded size", "[protocol][leaf][limits]") {
    auto body_with = [](const std::string& key) {
        return R"({"names":["a.example"],"public_key":)" + key + "}";
    };
    CHECK_THAT(request_error(body_with("42"), ErrorCode::invalid_field).message,
               ContainsSubstring("\"public_key\" must be a base64 string"));
    request_error(body_with(R"("")"), ErrorCode::invalid_public_key);
    for (const char* bad :
         {R"("AQI")", R"("AQ=D")", R"("AQ ID")", R"("AQ\nID")", R"("AQ_D")", R"("AQ==AQID")", R"("A===")"}) {
        INFO(bad);
        CHECK_THAT(request_error(body_with(bad), ErrorCode::invalid_public_key).message,
                   ContainsSubstring("base64"));
    }
    const ossl::Bytes largest(protocol::kMaxPublicKeyBytes, 0x42);
    CHECK(expect_value(protocol::decode_leaf_request(body_with("\"" + ossl::to_base64(largest) + "\"")))
              .public_key == largest);
    const ossl::Bytes too_large(protocol::kMaxPublicKeyBytes + 1, 0x42);
    request_error(body_with("\"" + ossl::to_base64(too_large) + "\""), ErrorCode::invalid_public_key);
}

TEST_CASE("lifetime_seconds is a positive integer up to the hard ceiling", "[protocol][leaf][limits]") {
    CHECK(expect_value(protocol::decode_leaf_request(request_with(R"("lifetime_seconds":1)")))
              .lifetime_seconds == 1U);
    CHECK(expect_value(protocol::decode_leaf_request(request_with(
                           "\"lifetime_seconds\":" + std::to_string(protocol::kMaxLifetimeSeconds))))
              .lifetime_seconds == protocol::kMaxLifetimeSeconds);
    CHECK_THAT(request_error(
                   request_with("\"lifetime_seconds\":" + std::to_string(protocol::kMaxLifetimeSeconds + 1)),
                   ErrorCode::lifetime_too_long)
                   .message,
               ContainsSubstring("2592000"));
    request_error(request_with(R"("lifetime_seconds":18446744073709551615)"), ErrorCode::lifetime_too_long);
    CHECK_THAT(request_error(request_with(R"("lifetime_seconds":0)"), ErrorCode::invalid_field).message,
               ContainsSubstring("positive integer"));
    CHECK_THAT(request_error(request_with(R"("lifetime_seconds":-5)"), ErrorCode::invalid_field).message,
               ContainsSubstring("is -5"));
    CHECK_THAT(request_error(request_with(R"("lifetime_seconds":3600.5)"), ErrorCode::invalid_field).message,
               ContainsSubstring("not a fractional number"));
    request_error(request_with(R"("lifetime_seconds":3600.0)"), ErrorCode::invalid_field);
    request_error(request_with(R"("lifetime_seconds":1e3)"), ErrorCode::invalid_field);
    // Beyond 64 bits nlohmann falls back to a double: still not an integer.
    request_error(request_with(R"("lifetime_seconds":99999999999999999999999)"), ErrorCode::invalid_field);
    request_error(request_with(R"("lifetime_seconds":"3600")"), ErrorCode::invalid_field);
    request_error(request_with(R"("lifetime_seconds":null)"), ErrorCode::invalid_field);
    request_error(request_with(R"("lifetime_seconds":true)"), ErrorCode::invalid_field);
}

TEST_CASE("leaf responses round-trip", "[protocol][leaf]") {
    const LeafResponse response = sample_response();
    const std::string body = protocol::encode_leaf_response(response);
    CHECK_THAT(body, ContainsSubstring(R"("audit_seq":42)"));
    CHECK_THAT(body, ContainsSubstring(R"("serial":"0123456789abcdef")"));
    CHECK(expect_value(protocol::decode_leaf_response(body)) == response);
}

TEST_CASE("the leaf response encoder writes what a JSON library would", "[protocol][leaf]") {
    // The encoder writes the response directly; it must match nlohmann's dump() byte for
    // byte, escapes included, and fall back to the library for text beyond ASCII.
    auto reference = [](const LeafResponse& r) {
        nlohmann::json doc;
        doc["certificate"] = r.certificate_pem;
        doc["chain"] = r.chain_pem;
        doc["serial"] = r.serial_hex;
        doc["not_before"] = r.not_before;
        doc["not_after"] = r.not_after;
        doc["audit_seq"] = r.audit_seq;
        return doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    };
    LeafResponse r = sample_response();
    CHECK(protocol::encode_leaf_response(r) == reference(r));
    r.serial_hex = std::string("q\"uote\\back\b\f\n\r\t") + '\x01' + '\x1f' + '\x7f';
    r.chain_pem.push_back("second\ncert");
    r.audit_seq = 18446744073709551615ULL;
    CHECK(protocol::encode_leaf_response(r) == reference(r));
    r.not_after = "caf\xc3\xa9";  // UTF-8
    CHECK(protocol::encode_leaf_response(r) == reference(r));
    r.not_after = "bad \xff byte";  // not UTF-8: replaced, never passed through
    CHECK(protocol::encode_leaf_response(r) == reference(r));
    CHECK(nlohmann::json::parse(protocol::encode_leaf_response(r))["serial"] == r.serial_hex);
}

TEST_CASE("leaf responses are decoded strictly", "[protocol][leaf]") {
    for (const char* field : {"certificate", "chain", "serial", "not_before", "not_after", "audit_seq"}) {
        INFO(field);
        expect_error(protocol::decode_leaf_response(response_without(field)), ErrorCode::invalid_field);
    }
    expect_error(protocol::decode_leaf_response(response_with("private_key", "x")), ErrorCode::unknown_field);
    expect_error(protocol::decode_leaf_response(response_with("certificate", "MIIB")),
                 ErrorCode::invalid_field);
    expect_error(protocol::decode_leaf_response(response_with("chain", nlohmann::json::array())),
                 ErrorCode::invalid_field);
    expect_error(protocol::decode_leaf_response(response_with("chain", {kPem, kPem, kPem, kPem, kPem})),
                 ErrorCode::invalid_field);
    expect_error(protocol::decode_leaf_response(response_with("chain", {kPem, 1})), ErrorCode::invalid_field);
    expect_error(protocol::decode_leaf_response(response_with("serial", "xyz")), ErrorCode::invalid_field);
    expect_error(protocol::decode_leaf_response(response_with("serial", "")), ErrorCode::invalid_field);
    expect_error(protocol::decode_leaf_response(response_with("serial", std::string(41, 'a'))),
                 ErrorCode::invalid_field);
    expect_error(protocol::decode_leaf_response(response_with("not_before", "yesterday")),
                 ErrorCode::invalid_field);
    expect_error(protocol::decode_leaf_response(response_with("not_after", "2024-04-01T00:00:00Z")),
                 ErrorCode::invalid_field);
    expect_error(protocol::decode_leaf_response(response_with("audit_seq", -1)), ErrorCode::invalid_field);
    expect_error(protocol::decode_leaf_response(response_with("audit_seq", 1.5)), ErrorCode::invalid_field);
    expect_error(protocol::decode_leaf_response(std::string(protocol::kMaxResponseBytes + 1, ' ')),
                 ErrorCode::body_too_large);
}
