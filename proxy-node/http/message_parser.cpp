#include "http/message_parser.hpp"

#include "http/text.hpp"
#include "ossl/encoding.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>

namespace proxy::http {

namespace {

// Digits of a Content-Length (10^18 is far beyond any real body, and fits in 64 bits).
constexpr std::size_t kMaxLengthDigits = 18;
// Hex digits of a chunk size (16^15 ~ 10^18).
constexpr std::size_t kMaxChunkSizeDigits = 15;
// Longer than any registered method; a longer first word means this is not HTTP.
constexpr std::size_t kMaxMethodBytes = 32;

bool tchar(unsigned char c) {
    if (std::isalnum(c) != 0) return true;
    return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != 0;
}

bool token(std::string_view s) {
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](char c) { return tchar(static_cast<unsigned char>(c)); });
}

bool parse_version(std::string_view v, int& minor) {
    if (v == "HTTP/1.1")
        minor = 1;
    else if (v == "HTTP/1.0")
        minor = 0;
    else
        return false;
    return true;
}

std::optional<std::uint64_t> parse_decimal(std::string_view s) {
    if (s.empty() || s.size() > kMaxLengthDigits) return std::nullopt;
    std::uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return v;
}

// Looks for CRLF CRLF in `buf`, starting where a terminator could first complete.
std::size_t find_blank_line(const std::string& buf, std::size_t from) {
    from = from >= 3 ? from - 3 : 0;
    auto p = buf.find("\r\n\r\n", from);
    return p == std::string::npos ? p : p + 4;
}

}  // namespace

std::optional<std::string_view> MessageHead::header(std::string_view name) const {
    for (const auto& [k, v] : headers)
        if (iequals(k, name)) return std::string_view(v);
    return std::nullopt;
}

MessageParser::MessageParser(Kind kind, MessageLimits limits) : kind_(kind), limits_(limits) {}

std::optional<std::uint64_t> MessageParser::content_length() const {
    if (framing_ != BodyFraming::length) return std::nullopt;
    return length_;
}

MessageParser::Step MessageParser::fail(std::size_t consumed, std::string why) {
    state_ = State::failed;
    return {Event::error, consumed, {}, std::move(why)};
}

MessageParser::Step MessageParser::finish_message(std::size_t consumed) {
    state_ = State::start;
    head_buf_.clear();
    return {Event::end, consumed, {}, {}};
}

MessageParser::Step MessageParser::parse(std::span<const std::uint8_t> in) {
    const auto* data = in.data();
    const std::size_t n = in.size();
    std::size_t i = 0;
    for (;;) {
        switch (state_) {
            case State::failed:
                return {Event::error, 0, {}, "the stream already failed to parse"};
            case State::start:
                // RFC 9112 2.2: empty lines before a request line are ignored.
                if (kind_ == Kind::request)
                    while (i < n && head_buf_.empty() && (data[i] == '\r' || data[i] == '\n')) ++i;
                if (i == n) return {Event::need_more, i, {}, {}};
                head_ = MessageHead{};
                state_ = State::head;
                [[fallthrough]];
            case State::head: {
                const std::size_t old = head_buf_.size();
                const std::size_t room = limits_.head_bytes + 1 - old;
                const std::size_t take = std::min(n - i, room);
                head_buf_.append(reinterpret_cast<const char*>(data + i), take);
                // Fail fast on something that is not HTTP at all (TLS, a binary protocol)
                // rather than waiting for a blank line that never comes.
                if (std::string why; !plausible_start_line(old, why)) {
                    auto step = fail(i + take, why);
                    step.not_http = true;
                    return step;
                }
                const std::size_t end = find_blank_line(head_buf_, old);
                if (end == std::string::npos) {
                    if (head_buf_.size() > limits_.head_bytes)
                        return fail(i + take,
                                    "message head over " + std::to_string(limits_.head_bytes) + " bytes");
                    return {Event::need_more, i + take, {}, {}};
                }
                i += end - old;
                head_buf_.resize(end);
                std::string why;
                if (!parse_head(why) || !decide_framing(why)) return fail(i, why);
                head_buf_.clear();
                switch (framing_) {
                    case BodyFraming::none:
                        break;
                    case BodyFraming::length:
                        state_ = State::body_length;
                        remaining_ = length_;
                        break;
                    case BodyFraming::chunked:
                        state_ = State::chunk_line;
                        break;
                    case BodyFraming::until_close:
                        state_ = State::body_until_close;
                        break;
                }
                // A message without a body ends right after its head: the head now, the end
                // on the next call.
                if (framing_ == BodyFraming::none) {
                    state_ = State::body_length;
                    remaining_ = 0;
                }
                return {Event::head, i, {}, {}};
            }
            case State::body_length: {
                if (remaining_ == 0) return finish_message(i);
                if (i == n) return {Event::need_more, i, {}, {}};
                const auto k = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, n - i));
                remaining_ -= k;
                return {Event::body, i + k, in.subspan(i, k), {}};
            }
            case State::body_until_close:
                if (i == n) return {Event::need_more, i, {}, {}};
                return {Event::body, n, in.subspan(i), {}};
            case State::chunk_line: {
                // chunk-size [ ; extensions ] CRLF
                while (i < n) {
                    const char c = static_cast<char>(data[i++]);
                    head_buf_ += c;
                    if (head_buf_.size() > limits_.chunk_line_bytes)
                        return fail(
                            i, "chunk size line over " + std::to_string(limits_.chunk_line_bytes) + " bytes");
                    if (c != '\n') continue;
                    if (head_buf_.size() < 2 || head_buf_[head_buf_.size() - 2] != '\r')
                        return fail(i, "chunk size line not ended by CRLF");
                    std::string_view line(head_buf_.data(), head_buf_.size() - 2);
                    std::string_view size = line.substr(0, line.find(';'));
                    // RFC 9112 7.1.1: BWS before ';' is tolerated; nothing else.
                    while (!size.empty() && (size.back() == ' ' || size.back() == '\t'))
                        size.remove_suffix(1);
                    if (size.empty() || size.size() > kMaxChunkSizeDigits)
                        return fail(i, "invalid chunk size");
                    std::uint64_t v = 0;
                    for (char h : size) {
                        const int d = ossl::hex_digit_value(h);
                        if (d < 0) return fail(i, "invalid chunk size");
                        v = v * 16 + static_cast<std::uint64_t>(d);
                    }
                    for (char e : line.substr(size.size()))
                        if (e == '\r' || e == '\n' || e == '\0') return fail(i, "invalid chunk extension");
                    head_buf_.clear();
                    if (v == 0) {
                        state_ = State::trailers;
                    } else {
                        remaining_ = v;
                        state_ = State::chunk_data;
                    }
                    break;
                }
                if (state_ == State::chunk_line) return {Event::need_more, i, {}, {}};
                continue;
            }
            case State::chunk_data: {
                if (i == n) return {Event::need_more, i, {}, {}};
                const auto k = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, n - i));
                remaining_ -= k;
                if (remaining_ == 0) state_ = State::chunk_data_crlf;
                return {Event::body, i + k, in.subspan(i, k), {}};
            }
            case State::chunk_data_crlf:
                while (i < n && head_buf_.size() < 2) head_buf_ += static_cast<char>(data[i++]);
                if (head_buf_.size() < 2) return {Event::need_more, i, {}, {}};
                if (head_buf_ != "\r\n") return fail(i, "chunk data not followed by CRLF");
                head_buf_.clear();
                state_ = State::chunk_line;
                continue;
            case State::trailers: {
                // trailer fields, then an empty line; head_buf_ starts as "\r\n" for the search.
                if (head_buf_.empty()) head_buf_ = "\r\n";
                const std::size_t old = head_buf_.size();
                const std::size_t room = limits_.trailer_bytes + 2 + 1 - old;
                const std::size_t take = std::min(n - i, room);
                head_buf_.append(reinterpret_cast<const char*>(data + i), take);
                const std::size_t end = find_blank_line(head_buf_, old);
                if (end == std::string::npos) {
                    if (head_buf_.size() > limits_.trailer_bytes + 2)
                        return fail(i + take, "trailer section over " +
                                                  std::to_string(limits_.trailer_bytes) + " bytes");
                    return {Event::need_more, i + take, {}, {}};
                }
                i += end - old;
                // Each trailer line must look like a header field.
                std::string_view t(head_buf_.data() + 2, end >= 6 ? end - 6 : 0);
                std::size_t pos = 0;
                while (pos < t.size()) {
                    auto e = t.find("\r\n", pos);
                    std::string_view line =
                        t.substr(pos, e == std::string_view::npos ? std::string_view::npos : e - pos);
                    auto colon = line.find(':');
                    if (line.empty() || colon == std::string_view::npos || !token(line.substr(0, colon)))
                        return fail(i, "malformed trailer field");
                    if (e == std::string_view::npos) break;
                    pos = e + 2;
                }
                return finish_message(i);
            }
        }
    }
}

MessageParser::Step MessageParser::eof() {
    switch (state_) {
        case State::start:
            if (head_buf_.empty()) return {Event::need_more, 0, {}, {}};
            [[fallthrough]];
        case State::head:
            return fail(0, "the stream ended inside a message head");
        case State::body_until_close:
            return finish_message(0);
        case State::failed:
            return {Event::error, 0, {}, "the stream already failed to parse"};
        default:
            return fail(0, "the stream ended before the end of the message body (truncated)");
    }
}

bool MessageParser::plausible_start_line(std::size_t from, std::string& why) const {
    const std::size_t line_end = head_buf_.find('\n');
    const std::size_t stop = std::min(head_buf_.size(), line_end);
    if (line_end != std::string::npos && line_end < from) return true;  // the start line was checked already
    if (kind_ == Kind::response) {
        constexpr std::string_view kPrefix = "HTTP/";
        const std::size_t k = std::min(stop, kPrefix.size());
        if (head_buf_.compare(0, k, kPrefix.substr(0, k)) != 0) {
            why = "not an HTTP/1.x status line";
            return false;
        }
        return true;
    }
    const std::size_t sp = head_buf_.find(' ');
    for (std::size_t i = from; i < stop; ++i) {
        const auto c = static_cast<unsigned char>(head_buf_[i]);
        const bool in_method = sp == std::string::npos || i < sp;
        if ((in_method && !tchar(c)) || (!in_method && (c < 0x20 || c > 0x7e) &&
                                         !(c == '\r' && (i + 1 == line_end || i + 1 == head_buf_.size())))) {
            why = "not an HTTP/1.x request line";
            return false;
        }
    }
    if ((sp == std::string::npos ? stop : sp) > kMaxMethodBytes) {
        why = "not an HTTP/1.x request line (method too long)";
        return false;
    }
    if (line_end != std::string::npos) {
        // The whole line is here: it must end in " HTTP/1.x".
        std::string_view line(head_buf_.data(), line_end);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.size() < 9 || line.substr(line.size() - 9, 8) != " HTTP/1." ||
            std::count(line.begin(), line.end(), ' ') != 2) {
            why = "not an HTTP/1.x request line";
            return false;
        }
    }
    return true;
}

bool MessageParser::parse_head(std::string& why) {
    std::string_view text(head_buf_);
    text.remove_suffix(2);  // the blank line's CRLF; every line below ends with CRLF
    std::size_t pos = 0;
    auto next_line = [&](std::string_view& line) {
        if (pos >= text.size()) return false;
        auto e = text.find("\r\n", pos);
        if (e == std::string_view::npos) e = text.size();
        line = text.substr(pos, e - pos);
        pos = e + 2;
        return true;
    };
    // Skip the empty lines allowed before a request line.
    std::string_view start;
    do {
        if (!next_line(start)) {
            why = "empty message head";
            return false;
        }
    } while (start.empty() && kind_ == Kind::request);
    for (char c : start)
        if (c == '\n' || c == '\r' || c == '\0') {
            why = "bare CR, LF or NUL in the start line";
            return false;
        }
    if (kind_ == Kind::request) {
        auto sp1 = start.find(' ');
        auto sp2 = sp1 == std::string_view::npos ? sp1 : start.find(' ', sp1 + 1);
        if (sp2 == std::string_view::npos || start.find(' ', sp2 + 1) != std::string_view::npos) {
            why = "request line is not 'METHOD target HTTP/1.x'";
            return false;
        }
        head_.method = start.substr(0, sp1);
        head_.target = start.substr(sp1 + 1, sp2 - sp1 - 1);
        if (!token(head_.method)) {
            why = "invalid request method";
            return false;
        }
        if (head_.target.empty() || !std::all_of(head_.target.begin(), head_.target.end(),
                                                 [](char c) { return c > 0x20 && c < 0x7f; })) {
            why = "invalid request target";
            return false;
        }
        if (!parse_version(start.substr(sp2 + 1), head_.version_minor)) {
            why = "not HTTP/1.0 or HTTP/1.1";
            return false;
        }
    } else {
        auto sp1 = start.find(' ');
        if (sp1 == std::string_view::npos || !parse_version(start.substr(0, sp1), head_.version_minor)) {
            why = "status line is not 'HTTP/1.x NNN reason'";
            return false;
        }
        std::string_view code = start.substr(sp1 + 1, 3);
        if (code.size() != 3 ||
            !std::all_of(code.begin(), code.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
            (start.size() > sp1 + 4 && start[sp1 + 4] != ' ') || code[0] == '0') {
            why = "invalid status code";
            return false;
        }
        head_.status = (code[0] - '0') * 100 + (code[1] - '0') * 10 + (code[2] - '0');
        for (char c : start.substr(sp1 + 4))
            if (static_cast<unsigned char>(c) < 0x20 && c != '\t') {
                why = "control character in the reason phrase";
                return false;
            }
    }
    std::string_view line;
    while (next_line(line)) {
        if (line.empty()) break;
        if (line.front() == ' ' || line.front() == '\t') {
            why = "obsolete header line folding";
            return false;
        }
        auto colon = line.find(':');
        if (colon == std::string_view::npos || !token(line.substr(0, colon))) {
            why = "malformed header field";
            return false;
        }
        std::string_view value = trim_ows(line.substr(colon + 1));
        for (char c : value)
            if (c == '\r' || c == '\n' || c == '\0') {
                why = "CR, LF or NUL in a header value";
                return false;
            }
        if (head_.headers.size() >= limits_.header_count) {
            why = "more than " + std::to_string(limits_.header_count) + " header fields";
            return false;
        }
        head_.headers.emplace_back(line.substr(0, colon), value);
    }
    return true;
}

bool MessageParser::decide_framing(std::string& why) {
    framing_ = BodyFraming::none;
    length_ = 0;
    if (kind_ == Kind::response) {
        const int s = head_.status;
        if ((s >= 100 && s < 200) || s == 204 || s == 304 || iequals(request_method_, "HEAD")) return true;
        if (iequals(request_method_, "CONNECT") && s >= 200 && s < 300) {
            why = "CONNECT inside an intercepted tunnel is not supported";
            return false;
        }
    }
    int te_count = 0, cl_count = 0;
    std::string_view te;
    std::optional<std::uint64_t> cl;
    for (const auto& [k, v] : head_.headers) {
        if (iequals(k, "Transfer-Encoding")) {
            ++te_count;
            te = v;
        } else if (iequals(k, "Content-Length")) {
            auto value = parse_decimal(v);
            if (!value || (cl && *cl != *value)) {
                why = "invalid or conflicting Content-Length";
                return false;
            }
            cl = value;
            ++cl_count;
        }
    }
    if (te_count > 0) {
        if (cl_count > 0) {
            why = "both Transfer-Encoding and Content-Length (refused: request smuggling risk)";
            return false;
        }
        if (te_count > 1 || !iequals(te, "chunked") || head_.version_minor == 0) {
            why = "unsupported Transfer-Encoding (only 'chunked' on HTTP/1.1)";
            return false;
        }
        framing_ = BodyFraming::chunked;
        return true;
    }
    if (cl) {
        framing_ = BodyFraming::length;
        length_ = *cl;
        return true;
    }
    framing_ = kind_ == Kind::response ? BodyFraming::until_close : BodyFraming::none;
    return true;
}

}  // namespace proxy::http
