#pragma once
// Hard ceilings of the wire contract. They bound what a decoder accepts from anyone; the
// ca-service's issuance policy may set lower limits, never higher ones.

#include <cstddef>
#include <cstdint>

namespace protocol {

// Request bodies larger than this are refused before any parsing.
inline constexpr std::size_t kMaxBodyBytes = 16 * 1024;
// A response carries PEM certificates, so it may be larger than a request.
inline constexpr std::size_t kMaxResponseBytes = 64 * 1024;
// Deepest nesting of arrays/objects a decoder accepts; the contract needs 3.
inline constexpr std::size_t kMaxJsonDepth = 8;

inline constexpr std::size_t kMaxNames = 100;
// RFC 1035 limit on the textual form of a DNS name without its trailing dot.
inline constexpr std::size_t kMaxNameLength = 253;
// A node's identity-renewal CSR (DER PKCS#10); base64 of it fits kMaxBodyBytes.
inline constexpr std::size_t kMaxCsrBytes = 8 * 1024;
// DER SubjectPublicKeyInfo; enough for RSA-8192 and every EC curve.
inline constexpr std::size_t kMaxPublicKeyBytes = 2048;
// 30 days: far above any sensible leaf lifetime for interception, so that a mistaken
// client cannot ask for a long-lived certificate even under a misconfigured policy.
inline constexpr std::uint32_t kMaxLifetimeSeconds = 30U * 24U * 60U * 60U;

// Bounds on the fields of a LeafResponse a node accepts.
inline constexpr std::size_t kMaxChainLength = 4;
inline constexpr std::size_t kMaxSerialHexLength = 40;  // RFC 5280: at most 20 octets

}  // namespace protocol
