#include "tls/plain_stream.hpp"

#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <algorithm>
#include <cstring>

namespace proxy::tls {

using asio::use_awaitable;

void PlainStream::one_message(std::string head, std::unique_ptr<MessageLimit> body) {
    head_ = std::move(head);
    head_sent_ = 0;
    body_ = std::move(body);
}

asio::awaitable<std::size_t> PlainStream::read_some(std::span<std::uint8_t> buf, IoStatus& status) {
    status = IoStatus::ok;
    if (head_sent_ < head_.size()) {
        const std::size_t n = std::min(buf.size(), head_.size() - head_sent_);
        std::memcpy(buf.data(), head_.data() + head_sent_, n);
        head_sent_ += n;
        co_return n;
    }
    asio::error_code ec;
    if (body_ && body_->complete()) {
        // The message is complete: wait for the client to close (or to send more, which is
        // not forwarded), then report the end.
        std::uint8_t one = 0;
        co_await socket_.async_read_some(asio::buffer(&one, 1), asio::redirect_error(use_awaitable, ec));
        status = (!ec || ec == asio::error::eof) ? IoStatus::eof : IoStatus::error;
        co_return 0;
    }
    const std::size_t n =
        co_await socket_.async_read_some(asio::buffer(buf.data(), buf.size()), asio::redirect_error(use_awaitable, ec));
    if (n > 0) {
        // Bytes past the message's end (a pipelined request) are dropped.
        const std::size_t mine = body_ ? body_->take({buf.data(), n}) : n;
        if (mine > 0) co_return mine;
        status = IoStatus::eof;
        co_return 0;
    }
    status = ec == asio::error::eof ? IoStatus::eof : IoStatus::error;
    co_return 0;
}

asio::awaitable<IoStatus> PlainStream::write_all(std::span<const std::uint8_t> data) {
    asio::error_code ec;
    co_await asio::async_write(socket_, asio::buffer(data.data(), data.size()), asio::redirect_error(use_awaitable, ec));
    co_return ec ? IoStatus::error : IoStatus::ok;
}

asio::awaitable<void> PlainStream::close_notify() { co_return; }

}  // namespace proxy::tls
