#pragma once
// One issuance, start to finish: policy, rate limit, build and sign in the HSM, audit
// record durably written, answer. The audit record comes first: a certificate whose
// record could not be written is discarded, never handed out (fail closed).

#include "audit/audit_log.hpp"
#include "authority/leaf_issuer.hpp"
#include "authority/node_registry.hpp"
#include "policy/issuance_policy.hpp"
#include "policy/rate_limiter.hpp"
#include "protocol/errors.hpp"
#include "protocol/leaf.hpp"

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <variant>
#include <vector>

namespace ca {

struct IssuanceRefusal {
    protocol::Error error;
    std::chrono::seconds retry_after{0};  // set for rate_limited and unavailability
};

using IssuanceOutcome = std::variant<protocol::LeafResponse, IssuanceRefusal>;

// Counters for /metrics; all relaxed atomics.
struct IssuanceMetrics {
    std::atomic<std::uint64_t> issued{0};
    std::atomic<std::uint64_t> latency_us_sum{0};
    std::atomic<std::uint64_t> lifetime_capped{0};
    mutable std::mutex refusals_mu;
    std::map<std::string, std::uint64_t> refusals;  // by error code

    void refused(protocol::ErrorCode code);
    std::string prometheus() const;
};

class IssuanceService {
public:
    IssuanceService(const policy::IssuancePolicy& policy, policy::RateLimiter& rate_limiter, const LeafIssuer& issuer,
                    audit::AuditLog& audit, NodeRegistry& nodes, std::vector<std::string> chain_pem,
                    std::chrono::seconds unavailable_retry_after);

    using IssuanceDone = std::function<void(IssuanceOutcome)>;

    // `node` must come from a verified client certificate. Signs on the calling thread, then
    // returns: `done` runs once the audit record is durable (on the audit writer's thread,
    // so it must be quick), or at once for refusals the log cannot take.
    void issue_async(const NodeIdentity& node, const protocol::LeafRequest& request, IssuanceDone done);
    // The same, waiting for the outcome.
    IssuanceOutcome issue(const NodeIdentity& node, const protocol::LeafRequest& request);

    const IssuanceMetrics& metrics() const { return metrics_; }

private:
    void refuse(const NodeIdentity& node, const protocol::LeafRequest& request, protocol::Error error,
                std::chrono::seconds retry_after, const IssuanceDone& done);

    const policy::IssuancePolicy& policy_;
    policy::RateLimiter& rate_limiter_;
    const LeafIssuer& issuer_;
    audit::AuditLog& audit_;
    NodeRegistry& nodes_;
    std::vector<std::string> chain_pem_;
    std::chrono::seconds unavailable_retry_after_;
    IssuanceMetrics metrics_;
};

}  // namespace ca
