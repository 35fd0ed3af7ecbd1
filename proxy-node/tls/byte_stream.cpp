#include "tls/byte_stream.hpp"

#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>

namespace proxy::tls {

asio::awaitable<std::size_t> ByteStream::read_releasing(std::unique_ptr<std::uint8_t[]>& storage, std::size_t size,
                                                        IoStatus& status) {
    if (storage) {
        const std::size_t n = read_buffered({storage.get(), size});
        if (n > 0) {
            status = IoStatus::ok;
            co_return n;
        }
    }
    if (!storage || waiting_for_peer()) {
        storage.reset();
        asio::error_code ec;
        co_await socket().async_wait(asio::socket_base::wait_read, asio::redirect_error(asio::use_awaitable, ec));
        storage = std::make_unique_for_overwrite<std::uint8_t[]>(size);
        if (ec) {
            status = IoStatus::error;
            co_return 0;
        }
    }
    const std::size_t n = co_await read_some({storage.get(), size}, status);
    co_return n;
}

asio::awaitable<void> ByteStream::end_sending() {
    co_await close_notify();
    asio::error_code ec;
    socket().shutdown(asio::socket_base::shutdown_send, ec);
}

void abort_socket(asio::ip::tcp::socket& socket) {
    asio::error_code ec;
    if (!socket.is_open()) return;
    socket.shutdown(asio::socket_base::shutdown_both, ec);
    socket.cancel(ec);
}

}  // namespace proxy::tls
