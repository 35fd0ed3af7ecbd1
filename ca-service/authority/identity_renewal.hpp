#pragma once
// Short-lived node identities, renewed by the nodes themselves: a node that still holds a
// valid, unrevoked identity sends a CSR for a key it has just made; the signer certifies
// that key with the node-identity CA (in the HSM) for the configured lifetime. The new
// identity's name is the verified old one's, never the CSR's; its profile is pki's
// NodeIdentity (clientAuth only, CA:FALSE). Every renewal and every refusal is on the
// record before the node hears of it. An expired identity cannot renew: the TLS handshake
// refuses it, so it takes the operator (hsm-setup renew-node).

#include "audit/audit_log.hpp"
#include "authority/node_registry.hpp"
#include "ossl/handles.hpp"
#include "pkcs11/signer.hpp"
#include "policy/rate_limiter.hpp"
#include "protocol/errors.hpp"
#include "protocol/identity.hpp"
#include "protocol/limits.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <variant>

namespace ca {

using protocol::RenewedIdentity;

struct RenewalRefusal {
    protocol::Error error;
    std::chrono::seconds retry_after{0};
};

using RenewalOutcome = std::variant<RenewedIdentity, RenewalRefusal>;

struct RenewalSettings {
    bool enabled = true;                    // false: refused, pointing at hsm-setup renew-node
    std::chrono::seconds lifetime{24 * 3600};
    double renewals_per_hour = 1;           // per node name, after the burst
    double burst = 5;
};

class IdentityRenewer {
public:
    // ca_signer: the node-identity CA's HSM key; ca_certificate: its certificate. Throws
    // when they do not belong together.
    IdentityRenewer(pkcs11::Signer& ca_signer, const X509& ca_certificate, RenewalSettings settings,
                    audit::AuditLog& audit, NodeRegistry& nodes);

    // `node` comes from the verified client certificate `current_der`; `csr_der` is what the
    // node sent. Thread-safe.
    RenewalOutcome renew(const NodeIdentity& node, std::span<const std::uint8_t> current_der,
                         std::span<const std::uint8_t> csr_der);

    std::string metrics() const;  // Prometheus text

private:
    RenewalOutcome refuse(const NodeIdentity& node, protocol::ErrorCode code, std::string message,
                          std::chrono::seconds retry_after = {});

    pkcs11::Signer& signer_;
    ossl::X509Ptr ca_certificate_;
    std::string ca_pem_;
    std::string organization_;
    RenewalSettings settings_;
    audit::AuditLog& audit_;
    NodeRegistry& nodes_;
    policy::RateLimiter rate_;
    std::atomic<std::uint64_t> renewed_{0};
    std::atomic<std::uint64_t> refused_{0};
};

}  // namespace ca
