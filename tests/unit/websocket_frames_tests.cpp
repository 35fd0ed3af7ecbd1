// proxy-node/websocket: the frame parser (every split of the input gives the same events),
// its protocol checks, close frames, the handshake checks and permessage-deflate decoding.

#include "websocket/frames.hpp"
#include "websocket/handshake.hpp"
#include "websocket/message_inflater.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <zlib.h>

#include <string>
#include <vector>

using namespace proxy::websocket;
using Catch::Matchers::ContainsSubstring;
using Bytes = std::vector<std::uint8_t>;

namespace {

Bytes frame(std::uint8_t b0, const std::string& payload, bool masked, std::array<std::uint8_t, 4> key = {1, 2, 3, 4}) {
    Bytes out{b0};
    const std::size_t n = payload.size();
    const std::uint8_t m = masked ? 0x80 : 0;
    if (n < 126) {
        out.push_back(static_cast<std::uint8_t>(m | n));
    } else if (n < 65536) {
        out.push_back(m | 126);
        out.push_back(static_cast<std::uint8_t>(n >> 8));
        out.push_back(static_cast<std::uint8_t>(n));
    } else {
        out.push_back(m | 127);
        for (int i = 7; i >= 0; --i) out.push_back(static_cast<std::uint8_t>(std::uint64_t{n} >> (8 * i)));
    }
    if (masked) out.insert(out.end(), key.begin(), key.end());
    for (std::size_t i = 0; i < n; ++i)
        out.push_back(static_cast<std::uint8_t>(payload[i]) ^ (masked ? key[i & 3] : 0));
    return out;
}

struct Parsed {
    std::vector<std::string> events;  // "H<opcode><fin?>", "E"
    std::string payload;              // every payload byte, unmasked
    std::string error;
};

// Feeds `in` in pieces of `piece` bytes.
Parsed parse_all(FrameParser& p, const Bytes& in, std::size_t piece) {
    Parsed out;
    std::size_t off = 0;
    while (off < in.size() || piece == 0) {
        const std::size_t n = std::min(piece == 0 ? in.size() : piece, in.size() - off);
        std::span<const std::uint8_t> chunk(in.data() + off, n);
        off += n;
        std::size_t pos = 0;
        for (;;) {
            auto st = p.parse(chunk.subspan(pos));
            pos += st.consumed;
            using E = FrameParser::Event;
            if (st.event == E::need_more) break;
            if (st.event == E::error) {
                out.error = st.error;
                return out;
            }
            if (st.event == E::header)
                out.events.push_back("H" + std::to_string(static_cast<int>(p.header().opcode)) +
                                     (p.header().fin ? "f" : ""));
            if (st.event == E::payload) out.payload.append(st.payload.begin(), st.payload.end());
            if (st.event == E::frame_end) out.events.push_back("E");
        }
        if (piece == 0) break;
    }
    return out;
}

Bytes cat(std::initializer_list<Bytes> parts) {
    Bytes out;
    for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}

std::string deflate_message(z_stream& z, const std::string& in) {
    std::string out(in.size() + 1024, '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z.avail_in = static_cast<uInt>(in.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    REQUIRE(deflate(&z, Z_SYNC_FLUSH) == Z_OK);
    out.resize(out.size() - z.avail_out);
    REQUIRE(out.size() >= 4);
    REQUIRE(out.substr(out.size() - 4) == std::string("\x00\x00\xff\xff", 4));
    out.resize(out.size() - 4);  // RFC 7692 7.2.1
    return out;
}

std::string inflate_all(MessageInflater& inf, const std::string& compressed, std::uint64_t limit,
                        MessageInflater::Result& r) {
    std::string out;
    auto sink = [&](std::span<const std::uint8_t> b) { out.append(b.begin(), b.end()); };
    r = inf.feed({reinterpret_cast<const std::uint8_t*>(compressed.data()), compressed.size()}, limit, sink);
    if (r == MessageInflater::Result::ok) r = inf.end_message(limit, sink);
    return out;
}

}  // namespace

TEST_CASE("websocket frames: the same events and payload whatever the input's splits", "[websocket]") {
    const std::string big(70000, 'b');  // a 64-bit length
    const std::string mid(300, 'm');    // a 16-bit length
    const Bytes client = cat({frame(0x01, "frag-1 ", true), frame(0x89, "ping", true, {9, 8, 7, 6}),
                              frame(0x80, "frag-2", true), frame(0x82, mid, true), frame(0x82, big, true),
                              frame(0x81, "", true), frame(0x88, "\x03\xe8", true)});
    for (std::size_t piece : {std::size_t{0}, std::size_t{1}, std::size_t{3}, std::size_t{7}, std::size_t{1000}}) {
        INFO("piece " << piece);
        FrameParser p(Sender::client, false);
        auto r = parse_all(p, client, piece);
        CHECK(r.error.empty());
        CHECK(r.payload == "frag-1 ping" "frag-2" + mid + big + std::string("\x03\xe8"));
        const std::vector<std::string> want = {"H1", "E", "H9f", "E", "H0f", "E", "H2f", "E",
                                               "H2f", "E", "H1f", "E", "H8f", "E"};
        CHECK(r.events == want);
    }
}

TEST_CASE("websocket frames: message state, compression flag and text/binary", "[websocket]") {
    FrameParser p(Sender::server, true);
    const Bytes in = frame(0x41, "x", false);  // RSV1 text, not final
    auto st = p.parse(in);
    REQUIRE(st.event == FrameParser::Event::header);
    CHECK(p.message_start());
    CHECK(p.message_compressed());
    CHECK(p.message_text());
    CHECK(p.in_message());
    st = p.parse(std::span(in).subspan(2));
    REQUIRE(st.event == FrameParser::Event::payload);
    st = p.parse({});
    REQUIRE(st.event == FrameParser::Event::frame_end);
    const Bytes cont = frame(0x80, "y", false);
    st = p.parse(cont);
    REQUIRE(st.event == FrameParser::Event::header);
    CHECK_FALSE(p.message_start());
    CHECK(p.message_compressed());  // still the message's
    CHECK_FALSE(p.in_message());
}

TEST_CASE("websocket frames: protocol errors are refused with a reason", "[websocket]") {
    struct Case {
        Sender sender;
        bool deflate;
        Bytes bytes;
        const char* why;
    };
    const std::vector<Case> cases = {
        {Sender::client, false, frame(0x81, "hi", false), "not masked"},
        {Sender::server, false, frame(0x81, "hi", true), "from the server is masked"},
        {Sender::client, false, frame(0x91, "", true), "RSV2/RSV3"},
        {Sender::client, false, frame(0xa1, "", true), "RSV2/RSV3"},
        {Sender::client, false, frame(0x83, "", true), "reserved data opcode 3"},
        {Sender::client, false, frame(0x8b, "", true), "reserved control opcode 11"},
        {Sender::client, false, frame(0x09, "", true), "fragmented control frame"},
        {Sender::client, false, frame(0x89, std::string(126, 'p'), true), "longer than 125"},
        {Sender::client, true, frame(0xc9, "", true), "RSV1 on a control frame"},
        {Sender::client, false, frame(0xc1, "", true), "RSV1 set without permessage-deflate"},
        {Sender::client, false, frame(0x80, "", true), "continuation frame outside a message"},
        {Sender::client, false, cat({frame(0x01, "a", true), frame(0x81, "b", true)}), "new data frame inside"},
        {Sender::client, true, cat({frame(0x41, "a", true), frame(0xc0, "b", true)}), "RSV1 on a continuation"},
        {Sender::server, false, Bytes{0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0}, "top bit"},
    };
    for (const auto& c : cases) {
        INFO(c.why);
        FrameParser p(c.sender, c.deflate);
        auto r = parse_all(p, c.bytes, 0);
        CHECK_THAT(r.error, ContainsSubstring(c.why));
        // And it stays failed.
        CHECK(p.parse(frame(0x81, "", c.sender == Sender::client)).event == FrameParser::Event::error);
    }
}

TEST_CASE("websocket close frames: code, reason, masking", "[websocket]") {
    const auto unmasked = close_frame(kClosePolicyViolation, "blocked by inspection: rule eicar", false);
    FrameParser from_server(Sender::server, false);
    auto r = parse_all(from_server, unmasked, 0);
    REQUIRE(r.error.empty());
    CHECK(r.events == std::vector<std::string>{"H8f", "E"});
    CHECK(r.payload == std::string("\x03\xf0") + "blocked by inspection: rule eicar");

    const auto masked = close_frame(kCloseMessageTooBig, std::string(300, 'x') + "\xc3\xa9", true);
    FrameParser from_client(Sender::client, false);
    auto m = parse_all(from_client, masked, 0);
    REQUIRE(m.error.empty());
    CHECK(m.payload.size() == kMaxControlPayload);  // cut to fit a control frame
    CHECK(m.payload.substr(0, 2) == "\x03\xf1");
}

TEST_CASE("websocket handshake: upgrade requests, acceptance and extensions", "[websocket]") {
    proxy::http::MessageHead req;
    req.method = "GET";
    req.headers = {{"Upgrade", "WebSocket"}, {"Connection", "keep-alive, Upgrade"}};
    CHECK(is_upgrade_request(req));
    req.headers[1].second = "keep-alive";
    CHECK_FALSE(is_upgrade_request(req));
    req.headers[1].second = "upgrade";
    req.method = "POST";
    CHECK_FALSE(is_upgrade_request(req));
    req.method = "GET";
    req.headers[0].second = "h2c";
    CHECK_FALSE(is_upgrade_request(req));

    proxy::http::MessageHead resp;
    resp.status = 101;
    resp.headers = {{"Upgrade", "websocket"}};
    CHECK(is_upgrade_accepted(resp));
    CHECK_FALSE(negotiated_extensions(resp).permessage_deflate);
    resp.headers.push_back({"Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits=12"});
    auto ext = negotiated_extensions(resp);
    CHECK(ext.permessage_deflate);
    CHECK(ext.unsupported.empty());
    resp.headers.push_back({"Sec-WebSocket-Extensions", "x-webkit-deflate-frame"});
    ext = negotiated_extensions(resp);
    CHECK(ext.unsupported == "x-webkit-deflate-frame");
    resp.status = 200;
    CHECK_FALSE(is_upgrade_accepted(resp));
}

TEST_CASE("permessage-deflate: messages with and without context takeover, bounded", "[websocket]") {
    for (bool takeover : {true, false}) {
        INFO("context takeover " << takeover);
        z_stream z{};
        REQUIRE(deflateInit2(&z, 6, Z_DEFLATED, -12, 8, Z_DEFAULT_STRATEGY) == Z_OK);
        MessageInflater inf;
        const std::string first = "the same words again and again, the same words again";
        const std::string second = "the same words again and again, and then some new ones";
        MessageInflater::Result r;
        CHECK(inflate_all(inf, deflate_message(z, first), 1 << 20, r) == first);
        CHECK(r == MessageInflater::Result::ok);
        if (!takeover) REQUIRE(deflateReset(&z) == Z_OK);
        CHECK(inflate_all(inf, deflate_message(z, second), 1 << 20, r) == second);
        CHECK(r == MessageInflater::Result::ok);
        deflateEnd(&z);
    }
    // A bomb: 8 MiB of one byte, a few KiB compressed, against a 1 MiB limit.
    z_stream z{};
    REQUIRE(deflateInit2(&z, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    const std::string bomb = deflate_message(z, std::string(8 << 20, 'z'));
    deflateEnd(&z);
    CHECK(bomb.size() < 16 * 1024);
    MessageInflater inf;
    MessageInflater::Result r;
    const auto out = inflate_all(inf, bomb, 1 << 20, r);
    CHECK(r == MessageInflater::Result::too_big);
    CHECK(out.size() <= (1u << 20));
    // Not deflate at all.
    MessageInflater bad;
    inflate_all(bad, std::string("\xff\xff\xff\xff\xff", 5), 1 << 20, r);
    CHECK(r == MessageInflater::Result::corrupt);
}
