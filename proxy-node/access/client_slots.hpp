#pragma once
// How many connections each client address holds at once, against limits.max_connections_per_client,
// so that one address (a broken script, a scan, a CONNECT flood) cannot take every connection
// the node has. Taken by the accept loops, given back by each connection when it ends (from
// any worker thread).

#include "access/networks.hpp"

#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>

namespace proxy::access {

class ClientSlots {
public:
    explicit ClientSlots(std::size_t per_client) : per_client_(per_client) {}

    // One more connection for `client`; false (nothing taken) when it holds the limit already.
    bool try_take(const Address& client);
    void give_back(const Address& client);
    std::size_t held(const Address& client);  // for tests and metrics
    std::size_t addresses();                  // addresses holding at least one connection
    std::size_t limit() const { return per_client_; }

private:
    static std::string key(const Address& a);
    const std::size_t per_client_;
    std::mutex mu_;
    std::unordered_map<std::string, std::size_t> held_;  // only addresses with a connection
};

}  // namespace proxy::access
