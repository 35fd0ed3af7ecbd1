#include "tls/byte_stream.hpp"

namespace proxy::tls {

asio::awaitable<void> ByteStream::end_sending() {
    co_await close_notify();
    asio::error_code ec;
    socket().shutdown(asio::socket_base::shutdown_send, ec);
}

}  // namespace proxy::tls
