#pragma once
// WebSocket framing (RFC 6455 section 5) as an intermediary sees it: a streaming, strict and
// bounded parser for one direction of a connection, and the close frames the node itself
// sends. The parser never buffers a payload: payload events point into the caller's input
// (or, for masked frames, into a scratch buffer holding the unmasked copy), so the relay
// forwards the raw frame bytes unchanged while the inspector sees the message payload.
//
// Strict: RSV2/RSV3 never set; RSV1 only on the first frame of a data message and only when
// permessage-deflate was negotiated; no reserved opcodes; control frames unfragmented and at
// most 125 bytes; continuation frames only inside a message and data frames only outside
// one; frames from the client masked, frames from the server not (section 5.1); 64-bit
// lengths without the top bit. Anything else is an error with a reason (close code 1002).

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace proxy::websocket {

enum class Opcode : std::uint8_t { continuation = 0, text = 1, binary = 2, close = 8, ping = 9, pong = 10 };

// Who sends the frames a parser reads: the rule for masking differs.
enum class Sender { client, server };

// Close status codes the node uses (RFC 6455 section 7.4.1).
inline constexpr std::uint16_t kCloseProtocolError = 1002;
inline constexpr std::uint16_t kClosePolicyViolation = 1008;
inline constexpr std::uint16_t kCloseMessageTooBig = 1009;
inline constexpr std::size_t kMaxControlPayload = 125;

struct FrameHeader {
    bool fin = false;
    bool rsv1 = false;  // permessage-deflate: this message is compressed (first frame only)
    Opcode opcode = Opcode::continuation;
    bool masked = false;
    std::array<std::uint8_t, 4> mask{};
    std::uint64_t length = 0;
    bool control() const { return static_cast<std::uint8_t>(opcode) >= 8; }
};

class FrameParser {
public:
    enum class Event {
        need_more,  // everything given was consumed
        header,     // header() is the next frame's; message_start() and message_compressed() are set
        payload,    // Step::payload holds the next unmasked payload bytes of the frame
        frame_end,  // the frame is complete (for a data frame with fin: its message too)
        error,      // Step::error says why; the parser stays in error
    };
    struct Step {
        Event event = Event::need_more;
        std::size_t consumed = 0;  // raw input bytes used for this step
        std::span<const std::uint8_t> payload;
        std::string error;
    };

    FrameParser(Sender sender, bool deflate_negotiated) : sender_(sender), deflate_(deflate_negotiated) {}

    Step parse(std::span<const std::uint8_t> in);

    const FrameHeader& header() const { return header_; }
    // The frame whose header was last reported begins a data message (text or binary).
    bool message_start() const { return message_start_; }
    // The data message under way (or just ended) is compressed (RSV1 on its first frame).
    bool message_compressed() const { return compressed_; }
    // The message under way is text (else binary).
    bool message_text() const { return text_; }
    // Inside a fragmented data message (its final frame not seen yet).
    bool in_message() const { return in_message_; }

private:
    enum class State { header, payload, failed };
    Step fail(std::size_t consumed, std::string why);
    std::optional<std::string> accept_header();

    Sender sender_;
    bool deflate_;
    State state_ = State::header;
    std::array<std::uint8_t, 14> head_{};
    std::size_t head_len_ = 0;
    FrameHeader header_;
    std::uint64_t remaining_ = 0;
    std::uint64_t offset_ = 0;  // payload bytes of this frame seen (mask position)
    bool message_start_ = false, compressed_ = false, text_ = false, in_message_ = false;
    std::vector<std::uint8_t> unmasked_;
};

// A close frame with `code` and an ASCII `reason` (cut to 123 bytes, other bytes as '?'), masked with a fresh
// random key when `masked` (the node speaking as a client, to the server).
std::vector<std::uint8_t> close_frame(std::uint16_t code, std::string_view reason, bool masked);

}  // namespace proxy::websocket
