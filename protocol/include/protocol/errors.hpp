#pragma once
// Stable error codes of the wire contract. The snake_case strings are the interface: a
// client may switch on them, so a code is never renamed or reused for another meaning.

#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace protocol {

enum class ErrorCode {
    malformed_request,       // body is not JSON
    unknown_field,           // a field this version does not define
    invalid_field,           // missing field, wrong type or out-of-range value
    body_too_large,          // body over kMaxBodyBytes
    unsupported_media_type,  // Content-Type is not application/json
    too_many_names,          // more names than the protocol or the policy allows
    invalid_name,            // not a syntactically valid DNS name or IP literal
    name_denied,             // matches a deny pattern
    name_not_allowed,        // matches no allow pattern
    wildcard_not_allowed,    // policy refuses wildcards
    public_suffix,           // a bare public suffix (com, co.uk) or a wildcard over one
    ip_not_allowed,          // policy refuses IP addresses
    duplicate_name,          // the same name twice after normalisation
    invalid_public_key,      // not base64 / not a DER SubjectPublicKeyInfo
    weak_public_key,         // key type or size below the accepted minimum
    lifetime_too_long,       // lifetime above the hard or policy maximum
    rate_limited,            // node exceeded its issuance rate
    unauthenticated,         // no valid client certificate
    node_revoked,            // client certificate revoked by an operator
    forbidden,               // authenticated, but not allowed to use this endpoint
    not_found,
    method_not_allowed,
    hsm_unavailable,
    audit_unavailable,  // audit record could not be written: nothing is issued
    signer_unavailable,  // the ca-service's signer process is down or restarting
    internal_error,
};

std::string_view to_string(ErrorCode code);
std::optional<ErrorCode> error_code_from_string(std::string_view text);
// The HTTP status a server answers with for this code.
int http_status(ErrorCode code);

struct Error {
    ErrorCode code;
    std::string message;  // says what the client should fix

    friend bool operator==(const Error&, const Error&) = default;
};

// A decoder's outcome: the value, or why the input was refused.
template <class T>
using Decoded = std::variant<T, Error>;

// Client-supplied text as it may appear in an error message: bounded (80 bytes, then
// "..."), with control bytes, quotes and backslashes shown as \xNN.
std::string printable(std::string_view untrusted);

// {"error": {"code": "...", "message": "..."}}
std::string encode_error(const Error& error);
// nullopt when the body is not exactly that shape or the code is unknown to this version;
// the caller then falls back to the HTTP status.
std::optional<Error> decode_error(std::string_view body);

}  // namespace protocol
