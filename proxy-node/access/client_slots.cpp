#include "access/client_slots.hpp"

namespace proxy::access {

std::string ClientSlots::key(const Address& a) {
    return std::string(reinterpret_cast<const char*>(a.bytes.data()), a.v6 ? 16 : 4);
}

bool ClientSlots::try_take(const Address& client) {
    std::lock_guard lock(mu_);
    auto& n = held_[key(client)];
    if (n >= per_client_) return false;
    ++n;
    return true;
}

void ClientSlots::give_back(const Address& client) {
    std::lock_guard lock(mu_);
    auto it = held_.find(key(client));
    if (it == held_.end()) return;
    if (--it->second == 0) held_.erase(it);
}

std::size_t ClientSlots::held(const Address& client) {
    std::lock_guard lock(mu_);
    auto it = held_.find(key(client));
    return it == held_.end() ? 0 : it->second;
}

std::size_t ClientSlots::addresses() {
    std::lock_guard lock(mu_);
    return held_.size();
}

}  // namespace proxy::access
