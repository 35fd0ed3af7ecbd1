#pragma once
// A node's renewed mTLS identity, as the ca-service answers POST /v1/identity/renew.

#include <cstdint>
#include <string>

namespace protocol {

struct RenewedIdentity {
    std::string certificate_pem;  // the new identity, then the node-identity CA
    std::string serial_hex;
    std::string not_after;        // RFC 3339
    std::uint64_t audit_seq = 0;
};

}  // namespace protocol
