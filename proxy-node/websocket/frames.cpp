#include "websocket/frames.hpp"

#include <openssl/rand.h>

#include <algorithm>

namespace proxy::websocket {

FrameParser::Step FrameParser::fail(std::size_t consumed, std::string why) {
    state_ = State::failed;
    return {Event::error, consumed, {}, std::move(why)};
}

std::optional<std::string> FrameParser::accept_header() {
    const std::uint8_t b0 = head_[0];
    const std::uint8_t b1 = head_[1];
    header_ = {};
    header_.fin = (b0 & 0x80) != 0;
    header_.rsv1 = (b0 & 0x40) != 0;
    if ((b0 & 0x30) != 0) return "RSV2/RSV3 set (no extension using them was negotiated)";
    const std::uint8_t op = b0 & 0x0f;
    if (op > 2 && op < 8) return "reserved data opcode " + std::to_string(op);
    if (op > 10) return "reserved control opcode " + std::to_string(op);
    header_.opcode = static_cast<Opcode>(op);
    header_.masked = (b1 & 0x80) != 0;
    if (sender_ == Sender::client && !header_.masked) return "a frame from the client is not masked";
    if (sender_ == Sender::server && header_.masked) return "a frame from the server is masked";
    const std::uint8_t len7 = b1 & 0x7f;
    std::size_t at = 2;
    if (len7 == 126) {
        header_.length = (std::uint64_t{head_[2]} << 8) | head_[3];
        at = 4;
    } else if (len7 == 127) {
        header_.length = 0;
        for (int i = 0; i < 8; ++i) header_.length = (header_.length << 8) | head_[2 + i];
        if ((header_.length >> 63) != 0) return "a 64-bit payload length with the top bit set";
        at = 10;
    } else {
        header_.length = len7;
    }
    if (header_.masked) std::copy_n(head_.begin() + static_cast<std::ptrdiff_t>(at), 4, header_.mask.begin());

    message_start_ = false;
    if (header_.control()) {
        if (!header_.fin) return "a fragmented control frame";
        if (header_.length > kMaxControlPayload) return "a control frame longer than 125 bytes";
        if (header_.rsv1) return "RSV1 on a control frame";
        return std::nullopt;
    }
    if (header_.opcode == Opcode::continuation) {
        if (!in_message_) return "a continuation frame outside a message";
        if (header_.rsv1) return "RSV1 on a continuation frame";
    } else {
        if (in_message_) return "a new data frame inside a fragmented message";
        if (header_.rsv1 && !deflate_) return "RSV1 set without permessage-deflate";
        message_start_ = true;
        compressed_ = header_.rsv1;
        text_ = header_.opcode == Opcode::text;
    }
    in_message_ = !header_.fin;
    return std::nullopt;
}

FrameParser::Step FrameParser::parse(std::span<const std::uint8_t> in) {
    switch (state_) {
    case State::failed:
        return {Event::error, 0, {}, "the stream failed earlier"};
    case State::header: {
        std::size_t used = 0;
        // The header's size is known from its first two bytes.
        auto wanted = [&]() -> std::size_t {
            if (head_len_ < 2) return 2;
            const std::uint8_t len7 = head_[1] & 0x7f;
            const std::size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
            return 2 + ext + ((head_[1] & 0x80) != 0 ? 4 : 0);
        };
        while (head_len_ < wanted()) {
            if (used == in.size()) return {Event::need_more, used, {}, {}};
            head_[head_len_++] = in[used++];
        }
        head_len_ = 0;
        if (auto why = accept_header()) return fail(used, std::move(*why));
        remaining_ = header_.length;
        offset_ = 0;
        state_ = State::payload;
        return {Event::header, used, {}, {}};
    }
    case State::payload: {
        if (remaining_ == 0) {
            state_ = State::header;
            return {Event::frame_end, 0, {}, {}};
        }
        if (in.empty()) return {Event::need_more, 0, {}, {}};
        const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, in.size()));
        std::span<const std::uint8_t> payload = in.first(n);
        if (header_.masked) {
            unmasked_.resize(n);
            for (std::size_t i = 0; i < n; ++i) unmasked_[i] = in[i] ^ header_.mask[(offset_ + i) & 3];
            payload = unmasked_;
        }
        remaining_ -= n;
        offset_ += n;
        return {Event::payload, n, payload, {}};
    }
    }
    return {Event::error, 0, {}, "unreachable"};
}

std::vector<std::uint8_t> close_frame(std::uint16_t code, std::string_view reason, bool masked) {
    reason = reason.substr(0, kMaxControlPayload - 2);
    std::vector<std::uint8_t> payload;
    payload.push_back(static_cast<std::uint8_t>(code >> 8));
    payload.push_back(static_cast<std::uint8_t>(code & 0xff));
    for (char c : reason)  // ASCII only: a cut never splits a UTF-8 sequence
        payload.push_back(static_cast<unsigned char>(c) < 0x80 ? static_cast<std::uint8_t>(c) : std::uint8_t{'?'});
    std::vector<std::uint8_t> out;
    out.push_back(0x88);
    out.push_back(static_cast<std::uint8_t>(payload.size() | (masked ? 0x80 : 0)));
    std::array<std::uint8_t, 4> key{};
    if (masked) {
        if (RAND_bytes(key.data(), static_cast<int>(key.size())) != 1) key = {0x5a, 0xa5, 0x3c, 0xc3};
        out.insert(out.end(), key.begin(), key.end());
    }
    for (std::size_t i = 0; i < payload.size(); ++i) out.push_back(payload[i] ^ (masked ? key[i & 3] : 0));
    return out;
}

}  // namespace proxy::websocket
