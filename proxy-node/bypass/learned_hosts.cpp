#include "bypass/learned_hosts.hpp"

namespace proxy::bypass {

void LearnedHosts::remember(const std::string& key, LearnedReason reason, std::chrono::seconds ttl, std::string detail,
                            Clock::time_point now) {
    if (capacity_ == 0 || ttl.count() <= 0) return;
    std::lock_guard lock(mu_);
    if (auto it = entries_.find(key); it != entries_.end()) {
        order_.erase(it->second.order);
        entries_.erase(it);
    }
    while (entries_.size() >= capacity_ && !order_.empty()) {
        entries_.erase(order_.front());
        order_.pop_front();
    }
    order_.push_back(key);
    entries_.emplace(key, Slot{LearnedEntry{reason, now + ttl, std::move(detail)}, std::prev(order_.end())});
}

std::optional<LearnedEntry> LearnedHosts::find(const std::string& key, Clock::time_point now) {
    std::lock_guard lock(mu_);
    auto it = entries_.find(key);
    if (it == entries_.end()) return std::nullopt;
    if (now >= it->second.entry.expires) {
        order_.erase(it->second.order);
        entries_.erase(it);
        return std::nullopt;
    }
    return it->second.entry;
}

std::size_t LearnedHosts::size() const {
    std::lock_guard lock(mu_);
    return entries_.size();
}

}  // namespace proxy::bypass
