// The upstream TLS session cache stays bounded however many tickets pass through it.

#include "upstream/upstream_verifier.hpp"

#include <catch2/catch_test_macros.hpp>

#include <openssl/ssl.h>

#include <string>

using proxy::UpstreamSessionCache;

TEST_CASE("upstream session cache: bookkeeping stays bounded under put/take churn", "[proxy][upstream]") {
    constexpr std::size_t kCapacity = 8;
    UpstreamSessionCache cache(kCapacity);
    for (int i = 0; i < 20000; ++i) {
        const std::string key = "host-" + std::to_string(i % 5) + "|127.0.0.1:443|";
        cache.put(key, SSL_SESSION_new());
        if (i % 3 != 0) {
            // A fresh SSL_SESSION has no ticket: take() discards it as not resumable.
            CHECK(cache.take(key) == nullptr);
        }
        REQUIRE(cache.bookkeeping_size() <= 2 * kCapacity + 65);
    }
    for (int i = 0; i < 1000; ++i) cache.put("distinct-" + std::to_string(i), SSL_SESSION_new());
    CHECK(cache.bookkeeping_size() <= 2 * kCapacity + 65);
    CHECK(cache.take("nothing-here") == nullptr);
}
