#include "tls/byte_stream.hpp"

#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>

namespace proxy::tls {

asio::awaitable<bool> ByteStream::wait_readable() {
    asio::error_code ec;
    co_await socket().async_wait(asio::socket_base::wait_read, asio::redirect_error(asio::use_awaitable, ec));
    co_return !ec;
}

asio::awaitable<void> ByteStream::end_sending() {
    co_await close_notify();
    asio::error_code ec;
    socket().shutdown(asio::socket_base::shutdown_send, ec);
}

}  // namespace proxy::tls
