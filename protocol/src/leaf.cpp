#include "protocol/leaf.hpp"

#include "protocol/json_text.hpp"
#include "protocol/time.hpp"

#include "strict_json.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <new>
#include <optional>
#include <string>

namespace protocol {

namespace {

using nlohmann::json;

namespace field {
constexpr std::string_view kNames = "names";
constexpr std::string_view kPublicKey = "public_key";
constexpr std::string_view kLifetimeSeconds = "lifetime_seconds";
constexpr std::string_view kCertificate = "certificate";
constexpr std::string_view kChain = "chain";
constexpr std::string_view kSerial = "serial";
constexpr std::string_view kNotBefore = "not_before";
constexpr std::string_view kNotAfter = "not_after";
constexpr std::string_view kAuditSeq = "audit_seq";
}  // namespace field

constexpr std::array<std::string_view, 3> kRequestFields = {field::kNames, field::kPublicKey,
                                                            field::kLifetimeSeconds};
constexpr std::array<std::string_view, 6> kResponseFields = {field::kCertificate, field::kChain,
                                                             field::kSerial,      field::kNotBefore,
                                                             field::kNotAfter,    field::kAuditSeq};

// Base64 length of the largest DER key accepted: refused before decoding anything bigger.
constexpr std::size_t kMaxPublicKeyBase64 = (kMaxPublicKeyBytes + 2) / 3 * 4;
constexpr std::string_view kPemCertificateBegin = "-----BEGIN CERTIFICATE-----";

std::string quoted(std::string_view name) {
    return "\"" + std::string(name) + "\"";
}

template <std::size_t N>
std::string field_list(const std::array<std::string_view, N>& fields) {
    std::string out;
    for (auto f : fields) out += (out.empty() ? "" : ", ") + std::string(f);
    return out;
}

Error wrong_type(std::string_view what, std::string_view expected, const json& got) {
    return {ErrorCode::invalid_field, std::string(what) + " must be " + std::string(expected) + ", not " +
                                          std::string(detail::type_name(got))};
}

// Refuses fields this version does not define, and missing required ones.
template <std::size_t N>
std::optional<Error> check_fields(const json& doc, const std::array<std::string_view, N>& defined,
                                  std::initializer_list<std::string_view> required,
                                  std::string_view message_name) {
    for (const auto& [key, value] : doc.items()) {
        if (std::find(defined.begin(), defined.end(), key) == defined.end())
            return Error{ErrorCode::unknown_field, "unknown field \"" + printable(key) + "\" in " +
                                                       std::string(message_name) +
                                                       "; protocol v1 defines only " + field_list(defined)};
    }
    for (auto name : required) {
        if (!doc.contains(name))
            return Error{ErrorCode::invalid_field,
                         "required field " + quoted(name) + " is missing from " + std::string(message_name)};
    }
    return std::nullopt;
}

std::optional<std::size_t> first_control_byte(std::string_view text) {
    for (std::size_t i = 0; i < text.size(); ++i) {
        auto c = static_cast<unsigned char>(text[i]);
        if (c < 0x20 || c == 0x7f) return i;
    }
    return std::nullopt;
}

std::optional<Error> read_names(const json& value, std::vector<std::string>& out) {
    if (!value.is_array()) return wrong_type("field \"names\"", "an array of strings", value);
    if (value.empty())
        return Error{ErrorCode::invalid_field, "field \"names\" is empty; ask for at least one name"};
    if (value.size() > kMaxNames)
        return Error{ErrorCode::too_many_names, "field \"names\" has " + std::to_string(value.size()) +
                                                    " entries; protocol v1 allows at most " +
                                                    std::to_string(kMaxNames) + " per request"};
    out.reserve(value.size());
    for (std::size_t i = 0; i < value.size(); ++i) {
        const json& item = value[i];
        const std::string where = "names[" + std::to_string(i) + "]";
        if (!item.is_string()) return wrong_type(where, "a string", item);
        const auto& name = item.get_ref<const std::string&>();
        if (name.empty()) return Error{ErrorCode::invalid_name, where + " is empty"};
        if (name.size() > kMaxNameLength)
            return Error{ErrorCode::invalid_name, where + " is " + std::to_string(name.size()) +
                                                      " bytes long; a DNS name has at most " +
                                                      std::to_string(kMaxNameLength)};
        if (auto at = first_control_byte(name))
            return Error{ErrorCode::invalid_name, where + " (\"" + printable(name) +
                                                      "\") contains a control character at byte " +
                                                      std::to_string(*at)};
        out.push_back(name);
    }
    return std::nullopt;
}

std::optional<Error> read_public_key(const json& value, ossl::Bytes& out) {
    if (!value.is_string())
        return wrong_type("field \"public_key\"", "a base64 string (DER SubjectPublicKeyInfo)", value);
    const auto& text = value.get_ref<const std::string&>();
    if (text.empty())
        return Error{
            ErrorCode::invalid_public_key,
            "field \"public_key\" is empty; send the base64 DER SubjectPublicKeyInfo of the leaf key"};
    if (text.size() > kMaxPublicKeyBase64)
        return Error{ErrorCode::invalid_public_key,
                     "field \"public_key\" is " + std::to_string(text.size()) +
                         " base64 characters; at most " + std::to_string(kMaxPublicKeyBase64) + " (" +
                         std::to_string(kMaxPublicKeyBytes) + " bytes of DER) are accepted"};
    auto der = ossl::from_base64(text);
    if (!der)
        return Error{
            ErrorCode::invalid_public_key,
            "field \"public_key\" is not standard padded base64 (RFC 4648 section 4, no line breaks, "
            "no whitespace, no URL-safe alphabet)"};
    if (der->empty() || der->size() > kMaxPublicKeyBytes)
        return Error{ErrorCode::invalid_public_key,
                     "field \"public_key\" decodes to " + std::to_string(der->size()) +
                         " bytes; expected 1 to " + std::to_string(kMaxPublicKeyBytes)};
    out = std::move(*der);
    return std::nullopt;
}

std::optional<Error> read_lifetime(const json& value, std::optional<std::uint32_t>& out) {
    constexpr std::string_view kExpected =
        "a positive integer number of seconds (omit the field for the service's default)";
    if (value.is_number_integer() && !value.is_number_unsigned()) {
        // nlohmann stores non-negative integers as unsigned: this one is negative.
        return Error{ErrorCode::invalid_field, "field \"lifetime_seconds\" is " +
                                                   std::to_string(value.get<std::int64_t>()) +
                                                   "; it must be " + std::string(kExpected)};
    }
    if (!value.is_number_unsigned()) return wrong_type("field \"lifetime_seconds\"", kExpected, value);
    const auto seconds = value.get<std::uint64_t>();
    if (seconds == 0)
        return Error{ErrorCode::invalid_field,
                     "field \"lifetime_seconds\" is 0; it must be " + std::string(kExpected)};
    if (seconds > kMaxLifetimeSeconds)
        return Error{ErrorCode::lifetime_too_long, "field \"lifetime_seconds\" is " +
                                                       std::to_string(seconds) +
                                                       "; protocol v1 allows at most " +
                                                       std::to_string(kMaxLifetimeSeconds) + " (30 days)"};
    out = static_cast<std::uint32_t>(seconds);
    return std::nullopt;
}

Decoded<LeafRequest> decode_request(std::string_view body) {
    auto parsed = detail::parse_object(body, kMaxBodyBytes);
    if (auto* error = std::get_if<Error>(&parsed)) return std::move(*error);
    const json& doc = std::get<json>(parsed);
    if (auto error = check_fields(doc, kRequestFields, {field::kNames, field::kPublicKey}, "a leaf request"))
        return std::move(*error);

    LeafRequest request;
    if (auto error = read_names(doc[field::kNames], request.names)) return std::move(*error);
    if (auto error = read_public_key(doc[field::kPublicKey], request.public_key)) return std::move(*error);
    if (auto it = doc.find(field::kLifetimeSeconds); it != doc.end()) {
        if (auto error = read_lifetime(*it, request.lifetime_seconds)) return std::move(*error);
    }
    return request;
}

std::optional<Error> read_pem(const json& value, std::string_view where, std::string& out) {
    if (!value.is_string()) return wrong_type(where, "a PEM certificate string", value);
    const auto& text = value.get_ref<const std::string&>();
    if (!text.starts_with(kPemCertificateBegin))
        return Error{ErrorCode::invalid_field,
                     std::string(where) + " does not start with " + std::string(kPemCertificateBegin)};
    out = text;
    return std::nullopt;
}

std::optional<Error> read_time(const json& value, std::string_view name, std::string& out) {
    const std::string where = "field " + quoted(name);
    if (!value.is_string()) return wrong_type(where, "an RFC 3339 UTC time string", value);
    const auto& text = value.get_ref<const std::string&>();
    if (!parse_rfc3339(text))
        return Error{ErrorCode::invalid_field,
                     where + " (\"" + printable(text) +
                         "\") is not an RFC 3339 UTC time like 2024-05-01T12:00:00Z"};
    out = text;
    return std::nullopt;
}

Decoded<LeafResponse> decode_response(std::string_view body) {
    auto parsed = detail::parse_object(body, kMaxResponseBytes);
    if (auto* error = std::get_if<Error>(&parsed)) return std::move(*error);
    const json& doc = std::get<json>(parsed);
    if (auto error = check_fields(doc, kResponseFields,
                                  {field::kCertificate, field::kChain, field::kSerial, field::kNotBefore,
                                   field::kNotAfter, field::kAuditSeq},
                                  "a leaf response"))
        return std::move(*error);

    LeafResponse response;
    if (auto error = read_pem(doc[field::kCertificate], "field \"certificate\"", response.certificate_pem))
        return std::move(*error);

    const json& chain = doc[field::kChain];
    if (!chain.is_array()) return wrong_type("field \"chain\"", "an array of PEM certificate strings", chain);
    if (chain.empty() || chain.size() > kMaxChainLength)
        return Error{ErrorCode::invalid_field, "field \"chain\" has " + std::to_string(chain.size()) +
                                                   " certificates; expected 1 to " +
                                                   std::to_string(kMaxChainLength)};
    for (std::size_t i = 0; i < chain.size(); ++i) {
        if (auto error =
                read_pem(chain[i], "chain[" + std::to_string(i) + "]", response.chain_pem.emplace_back()))
            return std::move(*error);
    }

    const json& serial = doc[field::kSerial];
    if (!serial.is_string()) return wrong_type("field \"serial\"", "a hex string", serial);
    response.serial_hex = serial.get<std::string>();
    if (response.serial_hex.empty() || response.serial_hex.size() > kMaxSerialHexLength ||
        !std::all_of(response.serial_hex.begin(), response.serial_hex.end(),
                     [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }))
        return Error{ErrorCode::invalid_field,
                     "field \"serial\" must be 1 to " + std::to_string(kMaxSerialHexLength) + " hex digits"};

    if (auto error = read_time(doc[field::kNotBefore], field::kNotBefore, response.not_before))
        return std::move(*error);
    if (auto error = read_time(doc[field::kNotAfter], field::kNotAfter, response.not_after))
        return std::move(*error);
    if (*parse_rfc3339(response.not_after) < *parse_rfc3339(response.not_before))
        return Error{ErrorCode::invalid_field, "field \"not_after\" is earlier than \"not_before\""};

    const json& seq = doc[field::kAuditSeq];
    if (!seq.is_number_unsigned()) return wrong_type("field \"audit_seq\"", "a non-negative integer", seq);
    response.audit_seq = seq.get<std::uint64_t>();
    return response;
}

// Decoders face untrusted bytes: whatever goes wrong inside becomes an Error, never an
// exception escaping into a server's request loop or a fuzzer.
template <class T, class Fn>
Decoded<T> never_throw(Fn&& decode, std::string_view body, std::string_view what) {
    try {
        return decode(body);
    } catch (const std::bad_alloc&) {
        return Error{ErrorCode::internal_error, "out of memory while decoding " + std::string(what)};
    } catch (const std::exception& e) {
        return Error{ErrorCode::internal_error, "could not decode " + std::string(what) + ": " + e.what()};
    } catch (...) {
        return Error{ErrorCode::internal_error, "could not decode " + std::string(what)};
    }
}

}  // namespace

Decoded<LeafRequest> decode_leaf_request(std::string_view body) {
    return never_throw<LeafRequest>(decode_request, body, "the leaf request");
}

Decoded<LeafResponse> decode_leaf_response(std::string_view body) {
    return never_throw<LeafResponse>(decode_response, body, "the leaf response");
}

std::string encode_leaf_request(const LeafRequest& request) {
    json doc;
    doc[field::kNames] = request.names;
    doc[field::kPublicKey] = ossl::to_base64(request.public_key);
    if (request.lifetime_seconds) doc[field::kLifetimeSeconds] = *request.lifetime_seconds;
    return detail::dump(doc);
}

namespace {

using json_text::append_ascii_string;

// The response as dump() writes it (keys in order), without building a JSON tree: the
// ca-service encodes one per certificate, and the tree costs as much as the TBS build.
std::optional<std::string> encode_ascii_leaf_response(const LeafResponse& r) {
    std::string out;
    out.reserve(r.certificate_pem.size() + 64 + r.chain_pem.size() * 800 + r.serial_hex.size());
    auto key = [&](std::string_view k) {
        out.push_back('"');
        out += k;
        out += "\":";
    };
    out.push_back('{');
    key(field::kAuditSeq);
    out += std::to_string(r.audit_seq);
    out.push_back(',');
    key(field::kCertificate);
    if (!append_ascii_string(out, r.certificate_pem)) return std::nullopt;
    out.push_back(',');
    key(field::kChain);
    out.push_back('[');
    for (std::size_t i = 0; i < r.chain_pem.size(); ++i) {
        if (i > 0) out.push_back(',');
        if (!append_ascii_string(out, r.chain_pem[i])) return std::nullopt;
    }
    out += "],";
    key(field::kNotAfter);
    if (!append_ascii_string(out, r.not_after)) return std::nullopt;
    out.push_back(',');
    key(field::kNotBefore);
    if (!append_ascii_string(out, r.not_before)) return std::nullopt;
    out.push_back(',');
    key(field::kSerial);
    if (!append_ascii_string(out, r.serial_hex)) return std::nullopt;
    out.push_back('}');
    return out;
}

}  // namespace

std::string encode_leaf_response(const LeafResponse& response) {
    if (auto fast = encode_ascii_leaf_response(response)) return std::move(*fast);
    json doc;
    doc[field::kCertificate] = response.certificate_pem;
    doc[field::kChain] = response.chain_pem;
    doc[field::kSerial] = response.serial_hex;
    doc[field::kNotBefore] = response.not_before;
    doc[field::kNotAfter] = response.not_after;
    doc[field::kAuditSeq] = response.audit_seq;
    return detail::dump(doc);
}

}  // namespace protocol
