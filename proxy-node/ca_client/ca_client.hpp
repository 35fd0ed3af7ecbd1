#pragma once
// The node's client for the ca-service: persistent mTLS (TLS 1.3) connections, one per
// worker thread, timeouts, retries with exponential backoff and jitter, and a background
// health probe so the node knows within a second or two whether the service is reachable.

#include "ca_client/node_identity.hpp"
#include "config/node_config.hpp"
#include "protocol/errors.hpp"
#include "protocol/leaf.hpp"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

namespace proxy {

struct CaFailure {
    enum class Kind {
        unavailable,       // no answer (connect, TLS, timeout) or a transient service error
        refused,           // the service answered with a policy/validation error
        invalid_response,  // the answer does not decode
    };
    Kind kind = Kind::unavailable;
    std::optional<protocol::ErrorCode> code;  // when the service said why
    std::string message;                      // for logs and error pages
};

using CaResult = std::variant<protocol::LeafResponse, CaFailure>;

class CaClient {
public:
    using Callback = std::function<void(CaResult)>;

    explicit CaClient(const CaServiceSection& config);
    ~CaClient();
    // Stops the workers; queued requests complete with an `unavailable` failure. Idempotent.
    void stop();
    CaClient(const CaClient&) = delete;
    CaClient& operator=(const CaClient&) = delete;

    // Queues the request; `done` runs on a CaClient thread (post it where it belongs).
    void request_leaf(protocol::LeafRequest request, Callback done);

    // False from the first failed contact until the next successful one. A service that
    // answers but refuses this node (revoked) is available: requests reach it and come back
    // with the reason.
    bool available() const { return available_.load(std::memory_order_relaxed); }
    // True while the service says this node's identity is revoked (health probe or a leaf
    // request refused as node_revoked), until a request succeeds again.
    bool revoked() const { return revoked_.load(std::memory_order_relaxed); }

    struct Stats {
        std::atomic<std::uint64_t> requests{0}, issued{0}, refused{0}, unavailable{0}, retries{0};
        std::atomic<std::uint64_t> identity_renewals{0}, identity_renewal_failures{0};
        std::atomic<std::int64_t> identity_not_after{0};  // Unix seconds of the identity in use
    };
    const Stats& stats() const { return stats_; }

    // The identity's state for /healthz: "ok", "renewal failing: ..." or "expired: ...".
    std::string identity_status() const;

private:
    struct Job {
        protocol::LeafRequest request;
        Callback done;
    };
    void worker();
    void health_probe();
    CaResult perform(class Connection& conn, const protocol::LeafRequest& request);
    // A connection built from the identity files as they are now; rebuilt after a renewal
    // (or when building it failed, e.g. out of descriptors).
    void refresh(std::unique_ptr<Connection>& conn, std::uint64_t& generation);
    // Renews the identity when it is due; returns when the next look is due.
    std::chrono::system_clock::time_point maybe_renew_identity(Connection& conn);
    void set_identity_status(std::string status);
    // When an identity is due for renewal (renew_before, or a third of its lifetime left).
    std::chrono::system_clock::time_point renewal_due(const IdentityInfo& info) const;

    CaServiceSection config_;
    std::mutex mu_;
    std::condition_variable cv_;       // jobs queued
    std::condition_variable stop_cv_;  // sleeping (backoff, probe interval) until stop
    std::deque<Job> queue_;
    bool stopping_ = false;
    std::atomic<bool> available_{true};
    std::atomic<bool> revoked_{false};
    Stats stats_;
    std::vector<std::thread> workers_;
    std::thread prober_;

    IdentityFiles identity_files_;
    std::mutex files_mu_;  // held while the identity files are replaced or read
    std::atomic<std::uint64_t> identity_generation_{0};
    std::chrono::system_clock::time_point first_renewal_look_;  // from the identity read at start
    mutable std::mutex status_mu_;
    std::string identity_status_ = "ok";
};

}  // namespace proxy
