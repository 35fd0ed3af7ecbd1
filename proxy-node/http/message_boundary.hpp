#pragma once
// Where one request ends in the bytes that follow its head, for a proxy that forwards
// exactly one message per plain http:// connection: Content-Length or chunked framing, read
// as strictly as the inspecting relay reads it (MessageParser), so both agree on the end.

#include "http/message_parser.hpp"
#include "tls/plain_stream.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace proxy::http {

class MessageBoundary final : public tls::MessageLimit {
public:
    // `head`: the complete request head as it is forwarded; its framing headers decide.
    // Throws std::invalid_argument, saying what is wrong, when its framing is not one this
    // parser accepts (both Content-Length and Transfer-Encoding, a coding other than
    // chunked, a bad length).
    explicit MessageBoundary(std::string_view head, MessageLimits limits = {});

    // How many bytes at the front of `in` belong to the message: all of them until its end,
    // then none. Bytes that break the framing are all passed (the relay's own parser refuses
    // them with the reason) and error() says what broke.
    std::size_t take(std::span<const std::uint8_t> in) override;
    bool complete() const override { return complete_; }
    const std::string& error() const { return error_; }

private:
    MessageParser parser_;
    bool complete_ = false;
    std::string error_;
};

}  // namespace proxy::http
