#include "policy/rate_limiter.hpp"

#include <catch2/catch_test_macros.hpp>

#include <atomic>
#include <cmath>
#include <stdexcept>
#include <thread>
#include <vector>

using ca::policy::RateLimitConfig;
using ca::policy::RateLimiter;
using namespace std::chrono_literals;

namespace {
const RateLimiter::Clock::time_point kStart{};  // injected time: tests never sleep
}

TEST_CASE("a rested node may use its burst, then waits", "[policy][rate_limit]") {
    RateLimiter limiter({.tokens_per_second = 1, .burst = 3, .max_tracked_nodes = 10});
    CHECK(limiter.try_acquire("node-a", kStart));
    CHECK(limiter.try_acquire("node-a", kStart));
    CHECK(limiter.try_acquire("node-a", kStart));
    const auto refused = limiter.try_acquire("node-a", kStart);
    CHECK_FALSE(refused);
    CHECK(refused.retry_after == 1s);
}

TEST_CASE("tokens refill at the configured rate, up to the burst", "[policy][rate_limit]") {
    RateLimiter limiter({.tokens_per_second = 0.5, .burst = 2, .max_tracked_nodes = 10});
    CHECK(limiter.try_acquire("n", kStart));
    CHECK(limiter.try_acquire("n", kStart));
    CHECK(limiter.try_acquire("n", kStart).retry_after == 2s);
    CHECK(limiter.try_acquire("n", kStart + 1s).retry_after == 1s);  // half a token so far
    CHECK(limiter.try_acquire("n", kStart + 2s));
    CHECK_FALSE(limiter.try_acquire("n", kStart + 2s));
    // A long rest refills only up to the burst.
    const auto later = kStart + 1000s;
    CHECK(limiter.try_acquire("n", later));
    CHECK(limiter.try_acquire("n", later));
    CHECK_FALSE(limiter.try_acquire("n", later));
}

TEST_CASE("retry_after rounds up to whole seconds and is at least one", "[policy][rate_limit]") {
    RateLimiter limiter({.tokens_per_second = 4, .burst = 1, .max_tracked_nodes = 10});
    CHECK(limiter.try_acquire("n", kStart));
    CHECK(limiter.try_acquire("n", kStart).retry_after == 1s);  // due in 250 ms
    CHECK(limiter.try_acquire("n", kStart + 250ms));
}

TEST_CASE("nodes have separate buckets", "[policy][rate_limit]") {
    RateLimiter limiter({.tokens_per_second = 1, .burst = 1, .max_tracked_nodes = 10});
    CHECK(limiter.try_acquire("node-a", kStart));
    CHECK_FALSE(limiter.try_acquire("node-a", kStart));
    CHECK(limiter.try_acquire("node-b", kStart));
    CHECK(limiter.tracked_nodes() == 2);
}

TEST_CASE("a clock stepping back refills nothing", "[policy][rate_limit]") {
    RateLimiter limiter({.tokens_per_second = 1, .burst = 1, .max_tracked_nodes = 10});
    CHECK(limiter.try_acquire("n", kStart + 100s));
    CHECK_FALSE(limiter.try_acquire("n", kStart));
    CHECK_FALSE(limiter.try_acquire("n", kStart + 100s));
    CHECK(limiter.try_acquire("n", kStart + 101s));
}

TEST_CASE("memory is bounded by evicting the least recently seen node", "[policy][rate_limit]") {
    RateLimiter limiter({.tokens_per_second = 0.001, .burst = 1, .max_tracked_nodes = 2});
    CHECK(limiter.try_acquire("a", kStart));
    CHECK(limiter.try_acquire("b", kStart));
    CHECK_FALSE(limiter.try_acquire("a", kStart + 1s));  // a is now the most recent
    CHECK(limiter.try_acquire("c", kStart + 2s));        // evicts b
    CHECK(limiter.tracked_nodes() == 2);
    CHECK_FALSE(limiter.try_acquire("a", kStart + 3s));  // a kept its empty bucket
    CHECK(limiter.try_acquire("b", kStart + 4s));        // b starts again from a full bucket
    CHECK(limiter.tracked_nodes() == 2);
}

TEST_CASE("concurrent callers never exceed the burst", "[policy][rate_limit]") {
    constexpr int kThreads = 4;
    constexpr int kAttemptsPerThread = 1000;
    RateLimiter limiter({.tokens_per_second = 1, .burst = 100, .max_tracked_nodes = 10});
    std::atomic<int> granted{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < kAttemptsPerThread; ++i)
                if (limiter.try_acquire("shared", kStart)) ++granted;
        });
    }
    for (auto& thread : threads) thread.join();
    CHECK(granted == 100);
}

TEST_CASE("rate limit settings are validated", "[policy][rate_limit][config]") {
    CHECK_THROWS_AS(RateLimiter({.tokens_per_second = 0, .burst = 1, .max_tracked_nodes = 1}),
                    std::invalid_argument);
    CHECK_THROWS_AS(RateLimiter({.tokens_per_second = -1, .burst = 1, .max_tracked_nodes = 1}),
                    std::invalid_argument);
    CHECK_THROWS_AS(RateLimiter({.tokens_per_second = std::nan(""), .burst = 1, .max_tracked_nodes = 1}),
                    std::invalid_argument);
    CHECK_THROWS_AS(RateLimiter({.tokens_per_second = 1, .burst = 0.5, .max_tracked_nodes = 1}),
                    std::invalid_argument);
    CHECK_THROWS_AS(RateLimiter({.tokens_per_second = 1, .burst = 1, .max_tracked_nodes = 0}),
                    std::invalid_argument);
    CHECK_NOTHROW(RateLimiter(RateLimitConfig{}));
}
