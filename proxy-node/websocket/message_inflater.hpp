#pragma once
// permessage-deflate (RFC 7692) decoding for inspection: one inflater per direction, fed the
// payload of each compressed message in order. The endpoints' frames are relayed unchanged;
// only the engine is fed the decoded message.
//
// One raw-deflate stream with a full (2^15) window serves every parameter set: with context
// takeover later messages refer back into earlier ones, which it keeps; without it they do
// not, and the kept window is simply unused. So every compressed message is decoded, even
// after the engine decided, or the next message could not be read. A message's decoded size
// is bounded (a decompression bomb ends the connection with 1009, see the relay).

#include <zlib.h>

#include <array>
#include <cstdint>
#include <functional>
#include <span>

namespace proxy::websocket {

class MessageInflater {
public:
    enum class Result { ok, too_big, corrupt };
    using Sink = std::function<void(std::span<const std::uint8_t>)>;

    MessageInflater();
    ~MessageInflater();
    MessageInflater(const MessageInflater&) = delete;
    MessageInflater& operator=(const MessageInflater&) = delete;

    // Compressed payload bytes of the message under way; decoded bytes go to `sink`. More than
    // `limit` decoded bytes in this message: too_big (nothing past the limit is produced).
    Result feed(std::span<const std::uint8_t> in, std::uint64_t limit, const Sink& sink);
    // The message's last frame ended: decodes the tail RFC 7692 section 7.2.2 removed.
    Result end_message(std::uint64_t limit, const Sink& sink);
    // Decoded bytes of the message under way.
    std::uint64_t message_bytes() const { return message_bytes_; }

private:
    Result run(std::span<const std::uint8_t> in, std::uint64_t limit, const Sink& sink);
    z_stream z_{};
    bool ready_ = false;
    std::uint64_t message_bytes_ = 0;
    std::array<std::uint8_t, 8 * 1024> out_{};
};

}  // namespace proxy::websocket
