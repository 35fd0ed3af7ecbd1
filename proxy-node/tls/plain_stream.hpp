#pragma once
// Plain TCP as a ByteStream, for proxied http:// requests that go through the inspecting
// relay. The client side of such a request is one message: the proxy has already read and
// rewritten its head, so the stream replays that head first and then passes exactly the
// body's bytes on (see `one_message`).

#include "tls/byte_stream.hpp"

#include <optional>
#include <string>

namespace proxy::tls {

class PlainStream final : public ByteStream {
public:
    explicit PlainStream(asio::ip::tcp::socket& socket) : socket_(socket) {}

    // Reads return `head` first, then at most `body_bytes` from the socket. After that the
    // stream ends (eof) as soon as the peer sends anything more or closes: the one request
    // is all that is forwarded, and the server side stays open for the response meanwhile.
    void one_message(std::string head, std::uint64_t body_bytes);

    asio::ip::tcp::socket& socket() override { return socket_; }
    asio::awaitable<std::size_t> read_some(std::span<std::uint8_t> buf, IoStatus& status) override;
    asio::awaitable<IoStatus> write_all(std::span<const std::uint8_t> data) override;
    asio::awaitable<void> close_notify() override;
    std::size_t read_buffered(std::span<std::uint8_t>) override { return 0; }

private:
    asio::ip::tcp::socket& socket_;
    std::string head_;
    std::size_t head_sent_ = 0;
    std::optional<std::uint64_t> body_left_;  // nullopt: no limit
};

}  // namespace proxy::tls
