// libFuzzer entry: the HTTP/1.1 framing parser reads decrypted bytes from clients and from
// servers. Input: a control byte (request or response, HEAD or GET answered, piece size)
// then the stream. The parser must never crash, hang or point outside its input, and it
// must find the same messages, bodies and errors whether the stream arrives at once or in
// pieces: a relay and a server that split messages differently is a smuggling vector.

#include "http/message_parser.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace {

using proxy::http::MessageParser;

struct Trace {
    std::string events;  // one letter per event: h(ead) e(nd) x (error) and the body bytes
    std::string body;
    bool operator==(const Trace&) const = default;
};

Trace run(MessageParser::Kind kind, bool head_request, std::span<const std::uint8_t> stream, std::size_t piece) {
    MessageParser parser(kind, proxy::http::MessageLimits{});
    if (kind == MessageParser::Kind::response) parser.set_request_method(head_request ? "HEAD" : "GET");
    Trace t;
    std::vector<std::uint8_t> buffered;  // bytes fed but not yet consumed
    std::size_t offset = 0;
    bool failed = false;
    while (!failed && offset < stream.size()) {
        const std::size_t n = std::min(piece, stream.size() - offset);
        buffered.insert(buffered.end(), stream.begin() + static_cast<std::ptrdiff_t>(offset),
                        stream.begin() + static_cast<std::ptrdiff_t>(offset + n));
        offset += n;
        std::size_t used = 0;
        for (int guard = 0;; ++guard) {
            if (guard > 1'000'000) __builtin_trap();  // no progress
            const std::span<const std::uint8_t> rest(buffered.data() + used, buffered.size() - used);
            const auto step = parser.parse(rest);
            if (step.consumed > rest.size()) __builtin_trap();
            if (!step.body.empty() && (step.body.data() < rest.data() || step.body.data() + step.body.size() > rest.data() + rest.size()))
                __builtin_trap();
            used += step.consumed;
            if (step.event == MessageParser::Event::need_more) {
                if (used != buffered.size()) __builtin_trap();  // need_more consumes everything
                break;
            }
            if (step.event == MessageParser::Event::error) {
                t.events += 'x';
                failed = true;
                break;
            }
            if (step.event == MessageParser::Event::head) t.events += 'h';
            if (step.event == MessageParser::Event::end) t.events += 'e';
            if (step.event == MessageParser::Event::body) t.body.append(step.body.begin(), step.body.end());
            if (step.consumed == 0 && step.event == MessageParser::Event::body) __builtin_trap();
        }
        buffered.erase(buffered.begin(), buffered.begin() + static_cast<std::ptrdiff_t>(used));
    }
    if (!failed) {
        const auto last = parser.eof();
        if (last.event == MessageParser::Event::error) t.events += 'x';
        if (last.event == MessageParser::Event::end) t.events += 'e';
    }
    return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    const std::uint8_t control = data[0];
    const auto kind = (control & 1) != 0 ? MessageParser::Kind::response : MessageParser::Kind::request;
    const bool head_request = (control & 2) != 0;
    const std::size_t piece = 1 + (control >> 2);  // 1-64 bytes at a time
    const std::span<const std::uint8_t> stream(data + 1, size - 1);

    const Trace at_once = run(kind, head_request, stream, stream.size() + 1);
    const Trace in_pieces = run(kind, head_request, stream, piece);
    if (!(at_once == in_pieces)) __builtin_trap();
    return 0;
}
