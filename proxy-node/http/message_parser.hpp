#pragma once
// HTTP/1.1 message framing (RFC 9112) for the decrypted streams of an intercepted tunnel:
// a streaming, strict and bounded parser for requests or responses. It never copies body
// bytes: body events point into the caller's buffer, so a relay can forward the raw bytes
// unchanged while an inspector sees the decoded body (chunk framing removed).
//
// Strict: CRLF line ends, token methods and header names, no obs-fold, no whitespace
// before ':', exactly one Content-Length (digits only), Transfer-Encoding only "chunked",
// never both; HTTP/1.0 and HTTP/1.1 only. Anything else is an error with a reason, never
// a guess (a relay that guesses differently from the server is a smuggling vector).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace proxy::http {

struct MessageLimits {
    std::size_t head_bytes = 64 * 1024;  // start line + headers + final CRLF
    std::size_t header_count = 128;
    std::size_t chunk_line_bytes = 4 * 1024;  // chunk size + extensions + CRLF
    std::size_t trailer_bytes = 16 * 1024;
};

struct MessageHead {
    // Request: method and target; response: status and reason.
    std::string method;
    std::string target;
    int status = 0;
    int version_minor = 1;  // HTTP/1.<minor>, 0 or 1
    std::vector<std::pair<std::string, std::string>> headers;

    // First value of a header (case-insensitive name), if present.
    std::optional<std::string_view> header(std::string_view name) const;
};

enum class BodyFraming { none, length, chunked, until_close };

class MessageParser {
public:
    enum class Kind { request, response };
    enum class Event {
        need_more,  // everything given was consumed; feed more
        head,       // head() is complete; body framing is known (framing())
        body,       // Step::body holds decoded body bytes (a view into the input)
        end,        // the message is complete; the parser is ready for the next one
        error,      // Step::error says why; the parser stays in error
    };
    struct Step {
        Event event = Event::need_more;
        std::size_t consumed = 0;  // input bytes used for this step (raw, incl. framing)
        std::span<const std::uint8_t> body;
        std::string error;
        bool not_http = false;  // error: the start line is not HTTP/1.x at all (another protocol)
    };

    MessageParser(Kind kind, MessageLimits limits);

    // Responses only: the method of the request this response answers (HEAD: no body).
    // Set before the response's head is parsed.
    void set_request_method(std::string method) { request_method_ = std::move(method); }

    // Parses from the start of `in` up to the next event.
    Step parse(std::span<const std::uint8_t> in);
    // The peer closed: completes a read-until-close body; otherwise an error if a message
    // was under way (truncated), need_more if the stream ended cleanly between messages.
    Step eof();

    bool at_message_start() const { return state_ == State::start && head_buf_.empty(); }
    const MessageHead& head() const { return head_; }
    BodyFraming framing() const { return framing_; }
    std::optional<std::uint64_t> content_length() const;  // for BodyFraming::length
    bool informational() const {
        return kind_ == Kind::response && head_.status >= 100 && head_.status < 200;
    }

private:
    enum class State {
        start,
        head,
        body_length,
        chunk_line,
        chunk_data,
        chunk_data_crlf,
        trailers,
        body_until_close,
        failed
    };

    Step fail(std::size_t consumed, std::string why);
    bool plausible_start_line(std::size_t from, std::string& why) const;
    bool parse_head(std::string& why);
    bool decide_framing(std::string& why);
    Step finish_message(std::size_t consumed);

    Kind kind_;
    MessageLimits limits_;
    State state_ = State::start;
    std::string head_buf_;  // head bytes, or the current chunk line / trailer section
    MessageHead head_;
    BodyFraming framing_ = BodyFraming::none;
    std::uint64_t remaining_ = 0;  // body_length / chunk_data
    std::uint64_t length_ = 0;
    std::string request_method_;
};

}  // namespace proxy::http
