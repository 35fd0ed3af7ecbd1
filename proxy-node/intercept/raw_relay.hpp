#pragma once
// Relays bytes between two TCP sockets without looking at them: the path of bypassed
// (not decrypted) tunnels. Whatever the client sent that the proxy only peeked at (its
// ClientHello) is still in the socket and goes to the server first. A FIN is passed on as
// a half-close; an error on either side aborts both.

#include "intercept/watchdog.hpp"

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>

#include <cstddef>
#include <cstdint>

namespace proxy {

struct RelayCounts {
    std::uint64_t client_to_upstream = 0;
    std::uint64_t upstream_to_client = 0;
};

// Returns when both directions have ended; the watchdog's idle deadline is pushed back by
// every read.
asio::awaitable<void> relay_raw(asio::ip::tcp::socket& client, asio::ip::tcp::socket& upstream,
                                std::size_t buffer_bytes, Watchdog& watchdog, RelayCounts& counts);

}  // namespace proxy
