#pragma once
// Hosts the proxy has learned to tunnel: servers that asked for a client certificate, and
// (when enabled) servers whose forged certificate a client rejected. Bounded (the oldest
// entry makes room) and every entry expires; shared by all worker threads.

#include <chrono>
#include <cstddef>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace proxy::bypass {

enum class LearnedReason { client_certificate, client_rejected };

struct LearnedEntry {
    LearnedReason reason = LearnedReason::client_certificate;
    std::chrono::steady_clock::time_point expires;
    std::string detail;  // why it was learned, for the log
};

class LearnedHosts {
public:
    using Clock = std::chrono::steady_clock;

    explicit LearnedHosts(std::size_t capacity) : capacity_(capacity) {}

    // Adds or refreshes `key` for `ttl`. No-op with zero capacity or ttl.
    void remember(const std::string& key, LearnedReason reason, std::chrono::seconds ttl, std::string detail,
                  Clock::time_point now = Clock::now());
    // The live entry for `key`; an expired one is dropped.
    std::optional<LearnedEntry> find(const std::string& key, Clock::time_point now = Clock::now());
    std::size_t size() const;

private:
    struct Slot {
        LearnedEntry entry;
        std::list<std::string>::iterator order;
    };
    std::size_t capacity_;
    mutable std::mutex mu_;
    std::unordered_map<std::string, Slot> entries_;
    std::list<std::string> order_;  // oldest (least recently learned) first
};

}  // namespace proxy::bypass
