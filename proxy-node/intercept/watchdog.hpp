#pragma once
// A per-connection deadline: every phase (request head, ClientHello, upstream connect,
// each handshake, waiting for a certificate) sets one, and the relay keeps an idle
// deadline that every read pushes back. When it passes, the connection's sockets are shut
// down (not closed: OpenSSL still holds the descriptors), which ends every pending wait.

#include "tls/byte_stream.hpp"

#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>

#include <array>
#include <chrono>
#include <memory>

namespace proxy {

class Watchdog : public std::enable_shared_from_this<Watchdog> {
public:
    using Clock = std::chrono::steady_clock;

    explicit Watchdog(const asio::any_io_executor& ex) : timer_(ex) {}

    void watch(asio::ip::tcp::socket* socket);
    void phase(Clock::duration limit);      // a fixed deadline from now
    void idle(Clock::duration limit);       // a deadline `limit` after the last touch()
    void touch() { last_activity_ = Clock::now(); }
    void stop();                            // before the sockets go away
    bool expired() const { return expired_; }

private:
    Clock::time_point due() const { return idle_mode_ ? last_activity_ + idle_limit_ : deadline_; }
    void schedule();
    void on_timer(unsigned generation);

    asio::steady_timer timer_;
    std::array<asio::ip::tcp::socket*, 2> sockets_{};
    Clock::time_point deadline_{};
    Clock::time_point last_activity_{};
    Clock::duration idle_limit_{};
    Clock::time_point scheduled_{Clock::time_point::max()};
    bool idle_mode_ = false;
    bool expired_ = false;
    bool stopped_ = false;
    unsigned generation_ = 0;
};


}  // namespace proxy
