#pragma once
// The HTTP surface of the ca-service, version 1. Both sides take paths from here so a
// rename cannot leave one side behind.

#include <string_view>

namespace protocol {

inline constexpr std::string_view kJsonMediaType = "application/json";

// Issuance: POST a LeafRequest, get a LeafResponse.
inline constexpr std::string_view kLeafPath = "/v1/leaf";
// A node renews its own mTLS identity (POST {"csr": base64 DER}, get {"certificate": PEM
// chain, "serial", "not_after", "audit_seq"}), authenticated by the identity it replaces.
inline constexpr std::string_view kIdentityRenewPath = "/v1/identity/renew";
// The issuing CA certificate chain (GET), for nodes to send after their leaf.
inline constexpr std::string_view kCaPath = "/v1/ca";
inline constexpr std::string_view kHealthPath = "/healthz";
inline constexpr std::string_view kMetricsPath = "/metrics";

// Administration; reachable only with an admin identity from the service PKI.
inline constexpr std::string_view kAdminPrefix = "/v1/admin/";
inline constexpr std::string_view kAdminNodesPath = "/v1/admin/nodes";
inline constexpr std::string_view kAdminRevokePath = "/v1/admin/revoke";
inline constexpr std::string_view kAdminUnrevokePath = "/v1/admin/unrevoke";
inline constexpr std::string_view kAdminAuditTailPath = "/v1/admin/audit/tail";

}  // namespace protocol
