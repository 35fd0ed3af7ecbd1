#pragma once
// Plain TCP as a ByteStream, for proxied http:// requests that go through the inspecting
// relay. The client side of such a request is one message: the proxy has already read and
// rewritten its head, so the stream replays that head first and then passes exactly the
// body's bytes on (see `one_message`).

#include "tls/byte_stream.hpp"

#include <memory>
#include <span>
#include <string>

namespace proxy::tls {

// Where the one message ends (http::MessageBoundary reads its framing).
class MessageLimit {
public:
    virtual ~MessageLimit() = default;
    // How many bytes at the front of `in` belong to the message.
    virtual std::size_t take(std::span<const std::uint8_t> in) = 0;
    virtual bool complete() const = 0;
};

class PlainStream final : public ByteStream {
public:
    explicit PlainStream(asio::ip::tcp::socket& socket) : socket_(socket) {}

    // Reads return `head` first, then the body's bytes as `body` delimits them (anything the
    // client sends after them is dropped). After that the stream ends (eof) as soon as the
    // peer sends anything more or closes: the one request is all that is forwarded, and the
    // server side stays open for the response meanwhile.
    void one_message(std::string head, std::unique_ptr<MessageLimit> body);

    asio::ip::tcp::socket& socket() override { return socket_; }
    asio::awaitable<std::size_t> read_some(std::span<std::uint8_t> buf, IoStatus& status) override;
    asio::awaitable<IoStatus> write_all(std::span<const std::uint8_t> data) override;
    asio::awaitable<void> close_notify() override;
    std::size_t read_buffered(std::span<std::uint8_t>) override { return 0; }

private:
    asio::ip::tcp::socket& socket_;
    std::string head_;
    std::size_t head_sent_ = 0;
    std::unique_ptr<MessageLimit> body_;  // null: no limit
};

}  // namespace proxy::tls
