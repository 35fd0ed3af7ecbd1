#include "protocol/errors.hpp"

#include "strict_json.hpp"

#include <new>

namespace protocol {

namespace {

using nlohmann::json;

constexpr ErrorCode kLastCode = ErrorCode::internal_error;
// An error body holds one short message; anything bigger is not ours.
constexpr std::size_t kMaxErrorBodyBytes = 8 * 1024;

namespace field {
constexpr const char* kError = "error";
constexpr const char* kCode = "code";
constexpr const char* kMessage = "message";
}  // namespace field

}  // namespace

std::string_view to_string(ErrorCode code) {
    switch (code) {
        case ErrorCode::malformed_request:
            return "malformed_request";
        case ErrorCode::unknown_field:
            return "unknown_field";
        case ErrorCode::invalid_field:
            return "invalid_field";
        case ErrorCode::body_too_large:
            return "body_too_large";
        case ErrorCode::unsupported_media_type:
            return "unsupported_media_type";
        case ErrorCode::too_many_names:
            return "too_many_names";
        case ErrorCode::invalid_name:
            return "invalid_name";
        case ErrorCode::name_denied:
            return "name_denied";
        case ErrorCode::name_not_allowed:
            return "name_not_allowed";
        case ErrorCode::wildcard_not_allowed:
            return "wildcard_not_allowed";
        case ErrorCode::public_suffix:
            return "public_suffix";
        case ErrorCode::ip_not_allowed:
            return "ip_not_allowed";
        case ErrorCode::duplicate_name:
            return "duplicate_name";
        case ErrorCode::invalid_public_key:
            return "invalid_public_key";
        case ErrorCode::weak_public_key:
            return "weak_public_key";
        case ErrorCode::lifetime_too_long:
            return "lifetime_too_long";
        case ErrorCode::rate_limited:
            return "rate_limited";
        case ErrorCode::unauthenticated:
            return "unauthenticated";
        case ErrorCode::node_revoked:
            return "node_revoked";
        case ErrorCode::forbidden:
            return "forbidden";
        case ErrorCode::not_found:
            return "not_found";
        case ErrorCode::method_not_allowed:
            return "method_not_allowed";
        case ErrorCode::hsm_unavailable:
            return "hsm_unavailable";
        case ErrorCode::audit_unavailable:
            return "audit_unavailable";
        case ErrorCode::signer_unavailable:
            return "signer_unavailable";
        case ErrorCode::internal_error:
            return "internal_error";
    }
    return "internal_error";
}

std::optional<ErrorCode> error_code_from_string(std::string_view text) {
    for (int i = 0; i <= static_cast<int>(kLastCode); ++i) {
        auto code = static_cast<ErrorCode>(i);
        if (to_string(code) == text) return code;
    }
    return std::nullopt;
}

int http_status(ErrorCode code) {
    // 400: the request is wrong whoever sends it. 403: well-formed, but this service's
    // configured policy or the operator refuses it.
    switch (code) {
        case ErrorCode::malformed_request:
        case ErrorCode::unknown_field:
        case ErrorCode::invalid_field:
        case ErrorCode::too_many_names:
        case ErrorCode::invalid_name:
        case ErrorCode::public_suffix:
        case ErrorCode::duplicate_name:
        case ErrorCode::invalid_public_key:
        case ErrorCode::weak_public_key:
        case ErrorCode::lifetime_too_long:
            return 400;
        case ErrorCode::unauthenticated:
            return 401;
        case ErrorCode::name_denied:
        case ErrorCode::name_not_allowed:
        case ErrorCode::wildcard_not_allowed:
        case ErrorCode::ip_not_allowed:
        case ErrorCode::node_revoked:
        case ErrorCode::forbidden:
            return 403;
        case ErrorCode::not_found:
            return 404;
        case ErrorCode::method_not_allowed:
            return 405;
        case ErrorCode::body_too_large:
            return 413;
        case ErrorCode::unsupported_media_type:
            return 415;
        case ErrorCode::rate_limited:
            return 429;
        case ErrorCode::hsm_unavailable:
        case ErrorCode::audit_unavailable:
        case ErrorCode::signer_unavailable:
            return 503;
        case ErrorCode::internal_error:
            return 500;
    }
    return 500;
}

std::string encode_error(const Error& error) {
    json body;
    body[field::kError] = {{field::kCode, to_string(error.code)}, {field::kMessage, error.message}};
    return detail::dump(body);
}

std::optional<Error> decode_error(std::string_view body) {
    try {
        auto parsed = detail::parse_object(body, kMaxErrorBodyBytes);
        auto* doc = std::get_if<json>(&parsed);
        if (!doc || doc->size() != 1 || !doc->contains(field::kError)) return std::nullopt;
        const json& inner = (*doc)[field::kError];
        if (!inner.is_object() || inner.size() != 2) return std::nullopt;
        auto code = inner.find(field::kCode);
        auto message = inner.find(field::kMessage);
        if (code == inner.end() || message == inner.end() || !code->is_string() || !message->is_string())
            return std::nullopt;
        auto known = error_code_from_string(code->get_ref<const std::string&>());
        if (!known) return std::nullopt;
        return Error{*known, message->get<std::string>()};
    } catch (...) {
        return std::nullopt;  // e.g. bad_alloc: the caller still has the HTTP status
    }
}

std::string printable(std::string_view text) {
    constexpr std::size_t kMaxQuotedBytes = 80;
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : text.substr(0, kMaxQuotedBytes)) {
        if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') {
            out.push_back(static_cast<char>(c));
        } else {
            out += "\\x";
            out.push_back(kHex[c >> 4]);
            out.push_back(kHex[c & 0x0f]);
        }
    }
    if (text.size() > kMaxQuotedBytes) out += "...";
    return out;
}

}  // namespace protocol
