#include "authority/issuance_service.hpp"

#include "ossl/digest.hpp"
#include "protocol/time.hpp"

#include <future>
#include <sstream>

namespace ca {

namespace {

std::string spki_hash(std::span<const std::uint8_t> spki) { return ossl::to_hex(ossl::sha256(spki)); }

}  // namespace

void IssuanceMetrics::refused(protocol::ErrorCode code) {
    std::lock_guard lock(refusals_mu);
    ++refusals[std::string(protocol::to_string(code))];
}

std::string IssuanceMetrics::prometheus() const {
    std::ostringstream out;
    out << "# HELP splitca_certificates_issued_total Leaf certificates issued.\n"
           "# TYPE splitca_certificates_issued_total counter\n"
        << "splitca_certificates_issued_total " << issued.load() << "\n"
        << "# HELP splitca_issuance_latency_seconds_sum Time spent issuing (policy, HSM, audit).\n"
           "# TYPE splitca_issuance_latency_seconds_sum counter\n"
        << "splitca_issuance_latency_seconds_sum " << static_cast<double>(latency_us_sum.load()) / 1e6 << "\n"
        << "# HELP splitca_lifetime_capped_total Requests whose lifetime was capped to the policy maximum.\n"
           "# TYPE splitca_lifetime_capped_total counter\n"
        << "splitca_lifetime_capped_total " << lifetime_capped.load() << "\n"
        << "# HELP splitca_requests_refused_total Leaf requests refused, by error code.\n"
           "# TYPE splitca_requests_refused_total counter\n";
    std::lock_guard lock(refusals_mu);
    for (const auto& [code, n] : refusals) out << "splitca_requests_refused_total{code=\"" << code << "\"} " << n << "\n";
    return out.str();
}

IssuanceService::IssuanceService(const policy::IssuancePolicy& policy, policy::RateLimiter& rate_limiter,
                                 const LeafIssuer& issuer, audit::AuditLog& audit, NodeRegistry& nodes,
                                 std::vector<std::string> chain_pem, std::chrono::seconds unavailable_retry_after)
    : policy_(policy),
      rate_limiter_(rate_limiter),
      issuer_(issuer),
      audit_(audit),
      nodes_(nodes),
      chain_pem_(std::move(chain_pem)),
      unavailable_retry_after_(unavailable_retry_after) {}

void IssuanceService::refuse(const NodeIdentity& node, const protocol::LeafRequest& request, protocol::Error error,
                             std::chrono::seconds retry_after, const IssuanceDone& done) {
    metrics_.refused(error.code);
    nodes_.record(node, false);
    IssuanceRefusal refusal{std::move(error), retry_after};
    if (refusal.error.code == protocol::ErrorCode::audit_unavailable) {
        done(std::move(refusal));
        return;
    }
    audit::DecisionRecord rec;
    rec.node_name = node.name;
    rec.node_fingerprint = node.fingerprint;
    rec.names = request.names;
    rec.decision = std::string(audit::decision::kDenied);
    rec.reason = std::string(protocol::to_string(refusal.error.code));
    rec.spki_sha256 = spki_hash(request.public_key);
    if (request.lifetime_seconds) rec.requested_lifetime_s = *request.lifetime_seconds;
    // The refusal stands whether or not its record could be written; the log's failure
    // state is on /healthz.
    audit_.append_async(rec, [refusal = std::move(refusal), done](std::uint64_t, const std::string*) mutable {
        done(std::move(refusal));
    });
}

void IssuanceService::issue_async(const NodeIdentity& node, const protocol::LeafRequest& request, IssuanceDone done) {
    const auto started = std::chrono::steady_clock::now();
    if (auto why = audit_.failure())
        return refuse(node, request,
                      {protocol::ErrorCode::audit_unavailable, "the audit log cannot be written; nothing is issued until "
                                                               "an operator fixes it: " + *why},
                      unavailable_retry_after_, done);

    // A revoked node's attempt is refused and put on the record: it is what an operator
    // looks for after revoking a node that may be in the wrong hands.
    if (nodes_.is_revoked(node))
        return refuse(node, request,
                      {protocol::ErrorCode::node_revoked,
                       "the certificate of '" + node.name + "' (sha256 " + node.fingerprint +
                           ") has been revoked by an operator"},
                      {}, done);

    auto verdict = policy_.evaluate(request);
    if (auto* error = std::get_if<protocol::Error>(&verdict)) return refuse(node, request, std::move(*error), {}, done);
    const auto& approved = std::get<policy::ApprovedLeaf>(verdict);

    if (auto rate = rate_limiter_.try_acquire(node.fingerprint); !rate.allowed)
        return refuse(node, request,
                      {protocol::ErrorCode::rate_limited,
                       "node '" + node.name + "' exceeded its issuance rate; retry after " +
                           std::to_string(rate.retry_after.count()) + " s"},
                      rate.retry_after, done);

    const auto now = std::chrono::system_clock::now();
    LeafOrder order;
    order.dns_names = approved.dns_names;
    order.ip_addresses = approved.ip_addresses;
    order.public_key = approved.spki_der;
    order.node_name = node.name;
    order.not_before = std::chrono::time_point_cast<std::chrono::seconds>(now - approved.backdate);
    order.not_after = std::chrono::time_point_cast<std::chrono::seconds>(now + approved.lifetime);

    IssuedLeaf leaf;
    try {
        leaf = issuer_.issue(order);
    } catch (const pkcs11::HsmUnavailable& e) {
        return refuse(node, request, {protocol::ErrorCode::hsm_unavailable, e.what()}, unavailable_retry_after_, done);
    }

    protocol::LeafResponse response;
    response.not_before = protocol::rfc3339(order.not_before);
    response.not_after = protocol::rfc3339(order.not_after);

    audit::DecisionRecord rec;
    rec.node_name = node.name;
    rec.node_fingerprint = node.fingerprint;
    rec.names = approved.names;
    rec.decision = std::string(audit::decision::kIssued);
    rec.serial = leaf.serial_hex;
    rec.spki_sha256 = spki_hash(approved.spki_der);
    rec.not_before = response.not_before;
    rec.not_after = response.not_after;
    if (request.lifetime_seconds) rec.requested_lifetime_s = *request.lifetime_seconds;

    response.certificate_pem = std::move(leaf.pem);
    response.chain_pem = chain_pem_;
    response.serial_hex = std::move(leaf.serial_hex);
    // Nothing leaves before its record is durable: the answer is built in the completion.
    audit_.append_async(rec, [this, node, request, response = std::move(response), done, started,
                              capped = approved.lifetime_capped](std::uint64_t seq, const std::string* error) mutable {
        if (error != nullptr) {
            metrics_.refused(protocol::ErrorCode::audit_unavailable);
            nodes_.record(node, false);
            done(IssuanceRefusal{{protocol::ErrorCode::audit_unavailable,
                                  "the audit record could not be written, so the certificate was discarded: " + *error},
                                 unavailable_retry_after_});
            return;
        }
        response.audit_seq = seq;
        nodes_.record(node, true);
        metrics_.issued.fetch_add(1, std::memory_order_relaxed);
        if (capped) metrics_.lifetime_capped.fetch_add(1, std::memory_order_relaxed);
        metrics_.latency_us_sum.fetch_add(
            static_cast<std::uint64_t>(
                std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started).count()),
            std::memory_order_relaxed);
        done(std::move(response));
    });
}

IssuanceOutcome IssuanceService::issue(const NodeIdentity& node, const protocol::LeafRequest& request) {
    std::promise<IssuanceOutcome> outcome;
    auto ready = outcome.get_future();
    issue_async(node, request, [&outcome](IssuanceOutcome o) { outcome.set_value(std::move(o)); });
    return ready.get();
}

}  // namespace ca
