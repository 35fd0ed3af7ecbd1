#pragma once
// POST /v1/leaf: a node asks for a short-lived server certificate for its own key.
//
//   request  {"names": ["example.com"], "public_key": "<base64 DER SPKI>", "lifetime_seconds": 3600}
//   response {"certificate": "<PEM>", "chain": ["<PEM>"], "serial": "<hex>",
//             "not_before": "<RFC 3339>", "not_after": "<RFC 3339>", "audit_seq": N}
//
// Decoders are strict (unknown or duplicate fields, wrong types and oversized input are
// refused) and never throw: any input yields a value or an Error.

#include "protocol/errors.hpp"
#include "protocol/limits.hpp"

#include "ossl/encoding.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace protocol {

struct LeafRequest {
    // DNS names, wildcards (*.example.com) or IP literals, as sent; syntax and policy are
    // checked by the ca-service, the decoder only bounds count and length.
    std::vector<std::string> names;
    ossl::Bytes public_key;                         // DER SubjectPublicKeyInfo
    std::optional<std::uint32_t> lifetime_seconds;  // absent: the policy's default

    friend bool operator==(const LeafRequest&, const LeafRequest&) = default;
};

struct LeafResponse {
    std::string certificate_pem;
    std::vector<std::string> chain_pem;  // issuing CA first; the root is not included
    std::string serial_hex;
    std::string not_before;  // RFC 3339, UTC
    std::string not_after;
    std::uint64_t audit_seq = 0;  // sequence number of the audit record for this issuance

    friend bool operator==(const LeafResponse&, const LeafResponse&) = default;
};

Decoded<LeafRequest> decode_leaf_request(std::string_view body);
std::string encode_leaf_request(const LeafRequest& request);

Decoded<LeafResponse> decode_leaf_response(std::string_view body);
std::string encode_leaf_response(const LeafResponse& response);

}  // namespace protocol
