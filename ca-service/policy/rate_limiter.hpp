#pragma once
// Per-node issuance rate limit: a token bucket per node identity, so one compromised or
// misbehaving node cannot make the HSM sign without bound or starve the other nodes.

#include <chrono>
#include <cstddef>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>

namespace ca::policy {

inline constexpr double kDefaultRatePerSecond = 50.0;
inline constexpr double kDefaultBurst = 200.0;
// Nodes are few (tens to hundreds); the bound only matters if identities churn.
inline constexpr std::size_t kDefaultMaxTrackedNodes = 10'000;

struct RateLimitConfig {
    double tokens_per_second = kDefaultRatePerSecond;  // sustained issuances per node
    double burst = kDefaultBurst;                      // issuances a rested node may make at once
    std::size_t max_tracked_nodes = kDefaultMaxTrackedNodes;
};

struct RateDecision {
    bool allowed = false;
    std::chrono::seconds retry_after{0};  // when refused: whole seconds until a token is due (>= 1)

    explicit operator bool() const { return allowed; }
};

// Thread-safe. Memory is bounded: beyond max_tracked_nodes the least recently seen node's
// bucket is dropped; that node later starts again from a full bucket, which at worst
// grants it one extra burst.
class RateLimiter {
public:
    using Clock = std::chrono::steady_clock;

    // Throws std::invalid_argument when a setting is out of range.
    explicit RateLimiter(RateLimitConfig config);

    // now is passed in so tests can drive time; the service passes Clock::now().
    RateDecision try_acquire(const std::string& node, Clock::time_point now);
    RateDecision try_acquire(const std::string& node) { return try_acquire(node, Clock::now()); }

    std::size_t tracked_nodes() const;
    const RateLimitConfig& config() const { return config_; }

private:
    struct Bucket {
        double tokens;
        Clock::time_point updated;
        std::list<std::string>::iterator recency;  // position in recency_
    };

    const RateLimitConfig config_;
    mutable std::mutex mutex_;
    std::unordered_map<std::string, Bucket> buckets_;
    std::list<std::string> recency_;  // most recently seen first
};

}  // namespace ca::policy
