#include "policy/rate_limiter.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace ca::policy {

namespace {

// Above this a per-node "limit" would not limit anything the HSM can do.
constexpr double kMaxRatePerSecond = 1e6;

RateLimitConfig validated(RateLimitConfig config) {
    if (!std::isfinite(config.tokens_per_second) || config.tokens_per_second <= 0 ||
        config.tokens_per_second > kMaxRatePerSecond)
        throw std::invalid_argument("rate limit: tokens_per_second is " +
                                    std::to_string(config.tokens_per_second) +
                                    "; set a positive number up to " + std::to_string(kMaxRatePerSecond));
    if (!std::isfinite(config.burst) || config.burst < 1)
        throw std::invalid_argument("rate limit: burst is " + std::to_string(config.burst) +
                                    "; set at least 1 (one request must be able to pass)");
    if (config.max_tracked_nodes < 1)
        throw std::invalid_argument("rate limit: max_tracked_nodes must be at least 1");
    return config;
}

}  // namespace

RateLimiter::RateLimiter(RateLimitConfig config) : config_(validated(config)) {}

RateDecision RateLimiter::try_acquire(const std::string& node, Clock::time_point now) {
    std::lock_guard lock(mutex_);
    auto it = buckets_.find(node);
    if (it == buckets_.end()) {
        if (buckets_.size() >= config_.max_tracked_nodes) {
            buckets_.erase(recency_.back());
            recency_.pop_back();
        }
        recency_.push_front(node);
        it = buckets_.emplace(node, Bucket{config_.burst, now, recency_.begin()}).first;
    } else {
        recency_.splice(recency_.begin(), recency_, it->second.recency);
    }

    Bucket& bucket = it->second;
    // A clock that steps back (only possible with injected times) refills nothing.
    const std::chrono::duration<double> elapsed = std::max(now - bucket.updated, Clock::duration::zero());
    bucket.tokens = std::min(config_.burst, bucket.tokens + elapsed.count() * config_.tokens_per_second);
    bucket.updated = std::max(now, bucket.updated);

    if (bucket.tokens >= 1.0) {
        bucket.tokens -= 1.0;
        return {true, std::chrono::seconds{0}};
    }
    const double wait = (1.0 - bucket.tokens) / config_.tokens_per_second;
    return {false, std::chrono::seconds{std::max<long long>(1, static_cast<long long>(std::ceil(wait)))}};
}

std::size_t RateLimiter::tracked_nodes() const {
    std::lock_guard lock(mutex_);
    return buckets_.size();
}

}  // namespace ca::policy
