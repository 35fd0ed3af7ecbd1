#pragma once
// Counters the proxy keeps for Prometheus (text exposition format 0.0.4).

#include "upstream/reason.hpp"

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

namespace proxy {

class CaClient;
class LeafCache;

struct Metrics {
    static constexpr std::size_t kReasons = static_cast<std::size_t>(kLastReason) + 1;

    std::atomic<std::uint64_t> connections_active{0};
    std::atomic<std::uint64_t> connections_accepted{0};
    std::atomic<std::uint64_t> intercepted{0}, proxied{0}, blocked{0}, failed{0}, bypassed{0};
    std::atomic<std::uint64_t> bypass_learned_hosts{0};  // gauge: entries in the learned-host table
    std::array<std::atomic<std::uint64_t>, kReasons> by_reason{};
    std::atomic<std::uint64_t> bytes_client_to_upstream{0}, bytes_upstream_to_client{0};
    std::atomic<bool> draining{false};

    void count(const std::string& decision, Reason reason);
};

std::string render_prometheus(const Metrics& m, const LeafCache& cache, const CaClient& ca);

}  // namespace proxy
