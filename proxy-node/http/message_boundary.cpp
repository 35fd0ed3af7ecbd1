#include "http/message_boundary.hpp"

#include <stdexcept>

namespace proxy::http {

MessageBoundary::MessageBoundary(std::string_view head, MessageLimits limits)
    : parser_(MessageParser::Kind::request, limits) {
    const std::span<const std::uint8_t> bytes(reinterpret_cast<const std::uint8_t*>(head.data()), head.size());
    const auto step = parser_.parse(bytes);
    if (step.event == MessageParser::Event::error) throw std::invalid_argument(step.error);
    if (step.event != MessageParser::Event::head || step.consumed != head.size())
        throw std::invalid_argument("not one complete request head");
    take({});  // a message without a body ends with its head
}

std::size_t MessageBoundary::take(std::span<const std::uint8_t> in) {
    if (complete_) return 0;
    if (!error_.empty()) return in.size();
    std::size_t pos = 0;
    for (;;) {
        const auto step = parser_.parse(in.subspan(pos));
        pos += step.consumed;
        switch (step.event) {
            case MessageParser::Event::need_more:
                return pos;
            case MessageParser::Event::body:
                continue;
            case MessageParser::Event::end:
                complete_ = true;
                return pos;
            case MessageParser::Event::head:
            case MessageParser::Event::error:
                error_ = step.event == MessageParser::Event::error ? step.error : "a second head inside the body";
                return in.size();
        }
    }
}

}  // namespace proxy::http
