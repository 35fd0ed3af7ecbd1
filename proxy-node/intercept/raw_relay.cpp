#include "intercept/raw_relay.hpp"

#include <asio/experimental/awaitable_operators.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <vector>

namespace proxy {

namespace {

using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

asio::awaitable<void> pump(tcp::socket& from, tcp::socket& to, tcp::socket& other_a, tcp::socket& other_b,
                           std::size_t buffer_bytes, Watchdog& watchdog, std::uint64_t& count) {
    std::vector<std::uint8_t> buf(buffer_bytes);
    for (;;) {
        asio::error_code ec;
        std::size_t n = co_await from.async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
        if (n > 0) {
            watchdog.touch();
            count += n;
            asio::error_code wec;
            co_await asio::async_write(to, asio::buffer(buf.data(), n), asio::redirect_error(asio::use_awaitable, wec));
            if (wec) {
                tls::abort_socket(other_a);
                tls::abort_socket(other_b);
                co_return;
            }
        }
        if (ec == asio::error::eof) {
            asio::error_code ignored;
            to.shutdown(tcp::socket::shutdown_send, ignored);  // the other direction may still run
            co_return;
        }
        if (ec) {
            // Reset or timeout: neither side is told a clean end that did not happen.
            tls::abort_socket(other_a);
            tls::abort_socket(other_b);
            co_return;
        }
    }
}

}  // namespace

asio::awaitable<void> relay_raw(tcp::socket& client, tcp::socket& upstream, std::size_t buffer_bytes,
                                Watchdog& watchdog, RelayCounts& counts) {
    co_await (pump(client, upstream, client, upstream, buffer_bytes, watchdog, counts.client_to_upstream) &&
              pump(upstream, client, client, upstream, buffer_bytes, watchdog, counts.upstream_to_client));
}

}  // namespace proxy
