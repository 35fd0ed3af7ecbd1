#include "inspect/inspecting_relay.hpp"

#include "http/error_page.hpp"
#include "http/message_parser.hpp"
#include "http/text.hpp"
#include "inspect/content_decoding.hpp"
#include "inspect/relay_policy.hpp"
#include "inspect/verdict_wait.hpp"
#include "websocket/frames.hpp"
#include "websocket/handshake.hpp"
#include "websocket/message_inflater.hpp"

#include <asio/experimental/awaitable_operators.hpp>
#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

// GCC 12 reports a false -Wmismatched-new-delete on large coroutine frames (Asio's frame
// operator new/delete pair is matched; GCC bug 105615-style inlining artefact).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace proxy::inspect {

namespace {

using asio::awaitable;
using http::iequals;
using http::MessageParser;
using Event = MessageParser::Event;
using namespace asio::experimental::awaitable_operators;

// A request blocked before it went upstream: the rest of its body is read and dropped (up
// to this much) so that the client, which is still sending, reads the block page instead
// of a reset.
constexpr std::uint64_t kMaxDiscardBytes = 4 << 20;

// A modified request (Verdict::rewrite) on the wire: its fields, and Content-Length for its
// body (also 0 when the client's request had a body, so the server reads no more).
std::string request_bytes(const RequestRewrite& r, bool had_body) {
    std::string out = r.method + " " + r.target + " HTTP/1.1\r\n";
    for (const auto& [k, v] : r.headers) out += k + ": " + v + "\r\n";
    if (!r.body.empty() || had_body) out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
    out += "\r\n";
    out += r.body;
    return out;
}

// Coroutine style in this file, for GCC 12 (Debian 12), which miscompiles some forms: no
// co_await inside a condition, a ternary or a short-circuit operator (await into a named
// local, then test it); no by-value coroutine parameters with destructors; no objects with
// destructors declared inside loops that await; stream references picked through pointers.
class Relay {
public:
    Relay(tls::ByteStream& client, tls::ByteStream& upstream, const RelayParams& params)
        : client_(client), upstream_(upstream), p_(params) {
        limits_.head_bytes = p_.config.head_bytes;
    }

    awaitable<RelayOutcome> run() {
        co_await (pump(Direction::request) && pump(Direction::response));
        co_return outcome_;
    }

private:
    struct Request {
        std::string method;
        std::string path;  // for logs
        bool websocket = false;        // asks for a WebSocket upgrade
        std::string websocket_target;  // its whole target (for the inspector), only then
    };
    // One direction of a WebSocket after its upgrade: frames parsed, each data message's
    // payload (decoded) through the inspector, its raw frames held until the verdict (up to
    // hold_bytes; past that they stream, and the bytes that end the message wait).
    struct WsSide {
        std::optional<websocket::FrameParser> parser;
        std::optional<websocket::MessageInflater> inflater;  // permessage-deflate negotiated
        std::unique_ptr<Inspection> inspection;              // the data message under way
        bool decided = false;  // allowed before its end
        bool holding = true;
        std::uint64_t size = 0;  // decoded payload bytes of the message
        Verdict verdict;         // a block found while its payload streamed
        std::vector<std::uint8_t> held;     // raw frame bytes of the message not yet passed on
        std::vector<std::uint8_t> control;  // the control frame under way
        std::vector<std::uint8_t> out;      // raw bytes to pass on at the end of this read
    };
    struct Message {
        bool active = false;     // its head has been read
        bool holding = true;     // raw bytes are held until the verdict (or hold_bytes)
        bool decided = false;    // allowed before its end: no final verdict needed
        bool forwarded = false;  // some of its bytes went out
        bool blocked = false;    // a blocked request whose rest is being dropped
        std::uint64_t dropped = 0;
        std::unique_ptr<Inspection> inspection;
        std::vector<std::uint8_t> held;
        Request request;
        Verdict block;
    };

    bool is_request(Direction d) const { return d == Direction::request; }
    std::chrono::milliseconds verdict_timeout() const { return std::chrono::milliseconds(p_.config.verdict_timeout_ms); }

    awaitable<void> pump(Direction dir) {
        const bool req = is_request(dir);
        tls::ByteStream* const from_ptr = req ? &client_ : &upstream_;
        tls::ByteStream& from = *from_ptr;
        tls::ByteStream* const to_ptr = req ? &upstream_ : &client_;
        tls::ByteStream& to = *to_ptr;
        MessageParser parser(req ? MessageParser::Kind::request : MessageParser::Kind::response, limits_);
        // The read buffer is held only while data flows: when the sender has nothing more
        // it goes back before the wait, so an idle connection holds none. Made at once, as
        // OpenSSL may hold bytes already (read with the handshake).
        const std::size_t size = p_.buffer_bytes;
        auto storage = std::make_unique_for_overwrite<std::uint8_t[]>(size);
        Message msg;
        // Locals with destructors live here, not inside the loops: GCC 12 mis-destroys such
        // loop-scoped objects across co_await.
        MessageParser::Step step;
        std::string why;
        for (;;) {
            tls::IoStatus st;
            std::size_t n = co_await from.read_releasing(storage, size, st);
            if (ended_) co_return;
            if (n == 0) {
                co_await at_eof(dir, parser, msg, st);
                co_return;
            }
            const std::span<std::uint8_t> buf(storage.get(), size);
            while (n + tls::kMaxRecordPlaintext <= buf.size()) {
                std::size_t more = from.read_buffered({buf.data() + n, buf.size() - n});
                if (more == 0) break;
                n += more;
            }
            p_.activity();
            const std::span<const std::uint8_t> in(buf.data(), n);
            if (websocket_) {
                {
                    const bool ok_ws = co_await ws_feed(dir, in);
                    if (!ok_ws) co_return;
                }
                continue;
            }
            if (opaque_) {
                {
                    const bool ok_1 = co_await write(to, in);
                    if (!ok_1) co_return;
                }
                continue;
            }
            std::size_t pos = 0, mark = 0;
            // Until the parser needs more: it reports a message's end (e.g. after a head
            // without a body) even when no input is left.
            for (;;) {
                if (!req && pos < n && parser.at_message_start() && !msg.active) {
                    if (outstanding_.empty()) {
                        // Bytes from the server before any request: a server-first protocol.
                        if (requests_seen_ == 0) {
                            why = "the server spoke first (not HTTP)";
                            co_await not_http(dir, msg, in.subspan(mark), why);
                        } else {
                            why = "a response without a request";
                            co_await malformed(dir, why);
                        }
                        co_return;
                    }
                    parser.set_request_method(outstanding_.front().method);
                }
                step = parser.parse(in.subspan(pos));
                pos += step.consumed;
                if (step.event == Event::need_more) break;
                if (step.event == Event::error) {
                    if (req && requests_seen_ == 0 && !msg.active && step.not_http) {
                        why = "not HTTP/1.1: " + step.error;
                        co_await not_http(dir, msg, in.subspan(mark), why);
                    } else {
                        why = std::string(name(dir)) + ": " + step.error;
                        co_await malformed(dir, why);
                    }
                    co_return;
                }
                if (step.event == Event::head) {
                    start_message(dir, parser, msg);
                    if (!req && parser.head().status == 101) {
                        const websocket::Extensions ext = websocket::negotiated_extensions(parser.head());
                        if (msg.request.websocket && websocket::is_upgrade_accepted(parser.head()) &&
                            ext.unsupported.empty()) {
                            // A WebSocket: its frames are parsed and its messages inspected.
                            start_websocket(msg.request, ext.permessage_deflate);
                            {
                                const bool ok_ws1 = co_await emit(to, msg, in.subspan(mark, pos - mark));
                                if (!ok_ws1) co_return;
                            }
                            outstanding_.pop_front();
                            msg = Message{};
                            {
                                const bool ok_ws2 = co_await ws_feed(dir, in.subspan(pos));
                                if (!ok_ws2) co_return;
                            }
                            break;
                        }
                        // Another upgrade: what follows is not HTTP.
                        if (!p_.config.non_http_tunnel) {
                            why = "protocol upgrade (101 Switching Protocols) after " + msg.request.method +
                                  " " + msg.request.path;
                            if (!ext.unsupported.empty())
                                why += ": WebSocket extension \"" + ext.unsupported + "\" cannot be inspected";
                            co_await not_http(dir, msg, {}, why);
                            co_return;
                        }
                        go_opaque("protocol upgrade (101 Switching Protocols) after " + msg.request.method + " " +
                                  msg.request.path + ", relayed uninspected (non_http = \"tunnel\")");
                        {
                            const bool ok_2 = co_await emit(to, msg, in.subspan(mark));
                            if (!ok_2) co_return;
                        }
                        break;
                    }
                    continue;
                }
                if (step.event == Event::body) {
                    {
                        const bool ok_3 = co_await on_body(dir, msg, step.body);
                        if (!ok_3) co_return;
                    }
                    continue;
                }
                // Event::end
                {
                    const bool ok_4 = co_await on_end(dir, parser, msg, in.subspan(mark, pos - mark));
                    if (!ok_4) co_return;
                }
                mark = pos;
                if (!req && pending_page_ && outstanding_.empty()) {
                    co_await deliver_page();
                    co_return;
                }
            }
            if (opaque_ || websocket_) continue;
            // The rest of this read belongs to the message under way.
            {
                const bool ok_5 = co_await on_partial(dir, parser, msg, in.subspan(mark));
                if (!ok_5) co_return;
            }
            if (!req) response_busy_ = msg.active || !parser.at_message_start();
        }
    }

    void start_message(Direction dir, const MessageParser& parser, Message& msg) {
        const auto& h = parser.head();
        const bool req = is_request(dir);
        msg.active = true;
        MessageInfo info;
        info.direction = dir;
        info.host = p_.host;
        if (req) {
            ++requests_seen_;
            msg.request = Request{h.method, loggable_path(h.target), false, {}};
            if (websocket::is_upgrade_request(h)) {
                msg.request.websocket = true;
                msg.request.websocket_target = h.target;
            }
            outstanding_.push_back(msg.request);
            info.method = h.method;
            info.target = h.target;
            // The client waits for "100 Continue" before sending the body: the head must go.
            if (auto expect = h.header("Expect"); expect && iequals(*expect, "100-continue"))
                msg.holding = false;
            ++p_.metrics.requests;
        } else {
            msg.request = outstanding_.front();
            info.method = msg.request.method;
            info.status = h.status;
            ++p_.metrics.responses;
        }
        info.content_length = parser.content_length();
        info.no_body = parser.framing() == http::BodyFraming::none || info.content_length == 0u;
        info.content_type = h.header("Content-Type").value_or("");
        std::vector<std::pair<std::string_view, std::string_view>> fields;
        fields.reserve(h.headers.size());
        for (const auto& [k, v] : h.headers) fields.emplace_back(k, v);
        info.headers = fields;
        // A stream by design (server-sent events and the like) never ends: held, its first
        // events would wait for hold_bytes. It is passed on as it comes, and still scanned.
        if (is_stream_type(p_.config, info.content_type)) msg.holding = false;
        msg.inspection = p_.inspector.begin(info);
        // The engine sees the body as the receiver will, decoded (inspect/content_decoding).
        if (auto coding = h.header("Content-Encoding"))
            msg.inspection = decoding_inspection(std::move(msg.inspection), parse_content_coding(*coding));
    }

    std::string describe(Direction dir, const Message& msg) const {
        return std::string(name(dir)) + (is_request(dir) ? " body of " : " body to ") + msg.request.method +
               " " + msg.request.path;
    }

    awaitable<bool> on_body(Direction dir, Message& msg, std::span<const std::uint8_t> bytes) {
        (is_request(dir) ? p_.metrics.request_bytes : p_.metrics.response_bytes) += bytes.size();
        if (msg.blocked) {
            msg.dropped += bytes.size();
            if (msg.dropped > kMaxDiscardBytes) {
                const bool r = co_await refuse_request(msg);
                co_return r;
            }
            co_return true;
        }
        if (msg.decided) co_return true;
        Verdict v = fail_closed(msg.inspection->body(bytes));
        if (v.blocked()) {
            const bool r = co_await block(dir, msg, v);
            co_return r;
        }
        if (v.kind == Verdict::Kind::allow) {
            msg.decided = true;
            note_allow([&] { return describe(dir, msg); }, v);
        } else {
            co_await engine_ready(*msg.inspection, verdict_timeout());
        }
        co_return true;
    }

    awaitable<bool> on_end(Direction dir, const MessageParser& parser, Message& msg,
                           std::span<const std::uint8_t> last) {
        const bool req = is_request(dir);
        if (msg.blocked) {
            const bool r = co_await refuse_request(msg);
            co_return r;
        }
        Verdict v = Verdict::allow();
        if (!msg.decided) {
            Verdict final = co_await final_verdict(*msg.inspection, verdict_timeout());
            v = std::move(final);
            if (v.kind == Verdict::Kind::allow) note_allow([&] { return describe(dir, msg); }, v);
        }
        if (ended_) co_return false;
        if (v.rewrite && (!req || msg.forwarded))
            v = refuse_rewrite(v, !req ? "it answers a response"
                                       : "part of the request had gone upstream (past hold_bytes, or after 100 Continue)");
        if (v.blocked()) {
            const bool held = co_await block(dir, msg, v);
            if (!held) co_return false;
            // A held request blocked at its end: nothing more of it to drop, answer now.
            const bool r = co_await refuse_request(msg);
            co_return r;
        }
        tls::ByteStream* const to_ptr = req ? &upstream_ : &client_;
        tls::ByteStream& to = *to_ptr;
        if (v.rewrite) {
            // The engine's request goes upstream instead of the client's held bytes.
            const std::string bytes = request_bytes(*v.rewrite, parser.framing() != http::BodyFraming::none);
            if (!outstanding_.empty()) outstanding_.back().method = v.rewrite->method;
            ++p_.metrics.rewritten;
            msg.held.clear();
            msg.held.shrink_to_fit();
            msg.holding = false;
            msg.forwarded = true;
            const bool ok_r = co_await write(to, {reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()});
            if (!ok_r) co_return false;
        } else {
            const bool ok_6 = co_await emit(to, msg, last);
            if (!ok_6) co_return false;
        }
        if (!req && !parser.informational()) outstanding_.pop_front();
        msg = Message{};
        if (!req) response_busy_ = false;
        co_return true;
    }

    // Bytes at the end of a read that belong to the message under way (or to the head of
    // the next one): held while the message may still get a block page, else forwarded.
    awaitable<bool> on_partial(Direction dir, const MessageParser& parser, Message& msg,
                               std::span<const std::uint8_t> rest) {
        tls::ByteStream* const to_ptr = is_request(dir) ? &upstream_ : &client_;
        tls::ByteStream& to = *to_ptr;
        if (msg.blocked) co_return true;
        if (!msg.active && parser.at_message_start()) {
            if (rest.empty()) co_return true;
            const bool ok = co_await write(to, rest);
            co_return ok;
        }
        if (msg.holding && !msg.decided) {
            msg.held.insert(msg.held.end(), rest.begin(), rest.end());
            rest = {};
            if (!msg.active || msg.held.size() <= p_.config.hold_bytes) co_return true;
        }
        {
            const bool r = co_await emit(to, msg, rest);
            co_return r;
        }
    }

    // Held bytes, then `rest`; the message streams from now on.
    awaitable<bool> emit(tls::ByteStream& to, Message& msg, std::span<const std::uint8_t> rest) {
        msg.holding = false;
        if (!msg.held.empty()) {
            msg.held.insert(msg.held.end(), rest.begin(), rest.end());
            rest = {};
            msg.forwarded = true;
            bool ok = co_await write(to, msg.held);
            msg.held.clear();
            msg.held.shrink_to_fit();
            if (!ok) co_return false;
        }
        if (!rest.empty()) {
            msg.forwarded = true;
            {
                const bool ok_7 = co_await write(to, rest);
                if (!ok_7) co_return false;
            }
        }
        co_return true;
    }

    // Counts what is actually passed on (a blocked upload's held bytes never count).
    awaitable<bool> write(tls::ByteStream& to, std::span<const std::uint8_t> bytes) {
        if (ended_) co_return false;
        (&to == &upstream_ ? p_.bytes_client_to_upstream : p_.bytes_upstream_to_client) += bytes.size();
        bool& busy = &to == &upstream_ ? writing_upstream_ : writing_client_;
        busy = true;
        const tls::IoStatus st = co_await to.write_all(bytes);
        busy = false;
        if (st != tls::IoStatus::ok) {
            if (!ended_) abort_both();
            co_return false;
        }
        co_return !ended_;
    }

    awaitable<void> at_eof(Direction dir, MessageParser& parser, Message& msg, tls::IoStatus st) {
        const bool req = is_request(dir);
        tls::ByteStream* const to_ptr = req ? &upstream_ : &client_;
        tls::ByteStream& to = *to_ptr;
        if (msg.blocked) {
            co_await refuse_request(msg);
            co_return;
        }
        if (websocket_) {
            // A message cut by the close never completes: its held frames are dropped.
            ws_[side(dir)]->held.clear();
        } else if (!opaque_) {
            auto step = parser.eof();
            if (step.event == Event::end) {
                // A body delimited by the close: its end is now.
                {
                    const bool ok_8 = co_await on_end(dir, parser, msg, {});
                    if (!ok_8) co_return;
                }
            } else if (step.event == Event::error) {
                std::string why = std::string(name(dir)) + ": " + step.error;
                if (!ended_) co_await malformed(dir, why);
                co_return;
            }
        }
        if (!req && pending_page_) {
            co_await deliver_page();
            co_return;
        }
        if (st == tls::IoStatus::eof) {
            co_await to.end_sending();  // a clean close_notify is passed on as one
        } else if (!ended_) {
            // A truncated or broken stream is not dressed up as a clean close.
            abort_both();
        }
    }

    // An allow that says something (a scan limit, an engine that failed with on_error =
    // allow): the first such note goes into the log's detail.
    // (`what` describes the message, built only when needed.)
    template <class Describe>
    void note_allow(const Describe& what, const Verdict& v) {
        if (v.over_limit) ++p_.metrics.over_limit;
        if (!v.note.empty() && outcome_.detail.empty()) outcome_.detail = what() + ": " + v.note;
    }

    awaitable<bool> block(Direction dir, Message& msg, const Verdict& v) {
        outcome_.reason = Reason::inspection;
        outcome_.rule = v.rule;
        outcome_.detail =
            describe(dir, msg) + " matched rule " + v.rule + (v.note.empty() ? "" : " (" + v.note + ")");
        p_.metrics.count_block(v.rule);
        if (!is_request(dir)) {
            if (msg.forwarded) {
                // Too late for a page: the client must not get the complete response.
                outcome_.detail += "; connection reset, the response had started";
                abort_both();
                co_return false;
            }
            co_await deliver_page(v, false);
            co_return false;
        }
        if (msg.forwarded) {
            // Part of the upload went out: the server must not get the rest. A page is
            // still possible if nothing of this request's response has been sent.
            tls::abort_socket(upstream_.socket());
            if (outstanding_.size() == 1 && !response_busy_) {
                co_await deliver_page(v, true);
            } else {
                outcome_.detail += "; connection reset";
                abort_both();
            }
            co_return false;
        }
        // Nothing of it went upstream: drop the rest of it, then answer with the page.
        outstanding_.pop_back();
        msg.blocked = true;
        msg.block = v;
        msg.held.clear();
        co_return true;
    }

    // The blocked request has been read to its end (or the drop limit): page now, or once
    // the responses to earlier pipelined requests have been passed on.
    awaitable<bool> refuse_request(Message& msg) {
        pending_page_ = http::http1_response(block_page_for(p_.host, msg.block, true));
        if (outstanding_.empty() && !response_busy_) co_await deliver_page();
        // else the response pump delivers it when the earlier responses are complete.
        co_return false;
    }

    awaitable<void> deliver_page(const Verdict& v, bool upload) {
        pending_page_ = http::http1_response(block_page_for(p_.host, v, upload));
        co_await deliver_page();
    }

    awaitable<void> deliver_page() {
        ended_ = true;
        tls::abort_socket(upstream_.socket());
        const std::string page = std::move(*pending_page_);
        pending_page_.reset();
        const std::span<const std::uint8_t> bytes(reinterpret_cast<const std::uint8_t*>(page.data()),
                                                  page.size());
        const tls::IoStatus st = co_await client_.write_all(bytes);
        if (st == tls::IoStatus::ok) co_await client_.close_notify();
        outcome_.page_sent = st == tls::IoStatus::ok;
        asio::error_code ec;
        client_.socket().shutdown(asio::socket_base::shutdown_send, ec);
        client_.socket().cancel(ec);  // wakes the request pump if it is reading
    }

    awaitable<void> not_http(Direction dir, Message& msg, std::span<const std::uint8_t> rest,
                             const std::string& why) {
        if (p_.config.non_http_tunnel && !msg.active) {
            // Configured: relay it uninspected (logged as such).
            go_opaque(why);
            tls::ByteStream* const to_ptr = is_request(dir) ? &upstream_ : &client_;
            tls::ByteStream& to = *to_ptr;
            std::vector<std::uint8_t> all = std::move(msg.held);
            all.insert(all.end(), rest.begin(), rest.end());
            if (!all.empty()) {
                const bool ok = co_await write(to, all);
                if (!ok) co_return;
            }
            // This pump goes on raw; the caller returns, so continue here.
            co_await raw_pump(dir);
            co_return;
        }
        outcome_.reason = Reason::not_http;
        outcome_.detail = why;
        abort_both();
    }

    // From here on the bytes are relayed as they are: the log and the metrics say so.
    void go_opaque(const std::string& why) {
        if (opaque_) return;
        opaque_ = true;
        outcome_.inspection = requests_seen_ == 0 ? "off" : "partial";
        ++p_.metrics.uninspected;
        if (outcome_.detail.empty()) outcome_.detail = "not inspected: " + why;
    }

    awaitable<void> raw_pump(Direction dir) {
        tls::ByteStream* const from_ptr = is_request(dir) ? &client_ : &upstream_;
        tls::ByteStream& from = *from_ptr;
        tls::ByteStream* const to_ptr = is_request(dir) ? &upstream_ : &client_;
        tls::ByteStream& to = *to_ptr;
        std::vector<std::uint8_t> buf(p_.buffer_bytes);
        for (;;) {
            tls::IoStatus st;
            std::size_t n = co_await from.read_some(buf, st);
            if (ended_) co_return;
            if (n == 0) {
                if (st == tls::IoStatus::eof) {
                    co_await to.end_sending();
                } else {
                    abort_both();
                }
                co_return;
            }
            p_.activity();
            {
                const bool ok_9 = co_await write(to, {buf.data(), n});
                if (!ok_9) co_return;
            }
        }
    }

    // ---- WebSocket (after a 101 to a WebSocket upgrade request) ----

    static std::size_t side(Direction d) { return d == Direction::request ? 0 : 1; }

    void start_websocket(const Request& upgrade, bool deflate) {
        websocket_ = true;
        ws_path_ = upgrade.path;
        ws_target_ = upgrade.websocket_target;
        for (auto& w : ws_) w = std::make_unique<WsSide>();
        ws_[0]->parser.emplace(websocket::Sender::client, deflate);
        ws_[1]->parser.emplace(websocket::Sender::server, deflate);
        if (deflate) {
            ws_[0]->inflater.emplace();
            ws_[1]->inflater.emplace();
        }
        ++p_.metrics.websocket_upgrades;
    }

    std::string ws_describe(Direction dir, const websocket::FrameParser& parser) const {
        return std::string("websocket ") + (parser.message_text() ? "text" : "binary") + " message from the " +
               (is_request(dir) ? "client" : "server") + " on GET " + ws_path_;
    }

    void ws_begin_message(Direction dir, WsSide& s) {
        const websocket::FrameParser& parser = *s.parser;
        MessageInfo info;
        info.direction = dir;
        info.carrier = Carrier::websocket;
        info.host = p_.host;
        info.method = "GET";
        info.target = ws_target_;
        if (parser.header().fin && !parser.message_compressed()) info.content_length = parser.header().length;
        info.content_type = parser.message_text() ? "text/plain; charset=utf-8" : "application/octet-stream";
        s.inspection = p_.inspector.begin(info);
        s.decided = false;
        s.holding = true;
        s.size = 0;
        s.verdict = Verdict::undecided();
        ++(is_request(dir) ? p_.metrics.websocket_client : p_.metrics.websocket_server);
    }

    // Decoded payload bytes of the data message under way, for the engine.
    void ws_inspect(Direction dir, WsSide& s, std::span<const std::uint8_t> decoded) {
        s.size += decoded.size();
        (is_request(dir) ? p_.metrics.request_bytes : p_.metrics.response_bytes) += decoded.size();
        if (s.decided || s.verdict.blocked() || !s.inspection) return;
        Verdict v = fail_closed(s.inspection->body(decoded));
        if (v.blocked()) {
            s.verdict = std::move(v);
        } else if (v.kind == Verdict::Kind::allow) {
            s.decided = true;
            note_allow([&] { return ws_describe(dir, *s.parser); }, v);
        }
    }

    // Raw bytes of a data frame: held while the message is held, else passed on at the end
    // of this read (a message past hold_bytes streams; what ends it waits for the verdict).
    void ws_data(WsSide& s, std::span<const std::uint8_t> raw) {
        s.held.insert(s.held.end(), raw.begin(), raw.end());
        if (s.holding && s.held.size() > p_.config.hold_bytes) s.holding = false;
    }

    void ws_flush_streaming(WsSide& s) {
        if (s.holding || s.held.empty()) return;
        s.out.insert(s.out.end(), s.held.begin(), s.held.end());
        s.held.clear();
    }

    awaitable<bool> ws_write_out(Direction dir, WsSide& s) {
        if (s.out.empty()) co_return true;
        tls::ByteStream* const to_ptr = is_request(dir) ? &upstream_ : &client_;
        const bool ok = co_await write(*to_ptr, s.out);
        s.out.clear();
        co_return ok;
    }

    // Frames read from one side: parsed, inspected and passed on in order. False when the
    // relay ends (a block, a protocol error, a failed write).
    awaitable<bool> ws_feed(Direction dir, std::span<const std::uint8_t> in) {
        WsSide& s = *ws_[side(dir)];
        websocket::FrameParser& parser = *s.parser;
        const std::uint64_t limit = p_.config.websocket_max_message_bytes;
        const auto sink = [this, dir, &s](std::span<const std::uint8_t> decoded) { ws_inspect(dir, s, decoded); };
        websocket::FrameParser::Step step;
        Verdict final;
        std::string why;
        const std::string no_rule;
        std::size_t pos = 0;
        for (;;) {
            step = parser.parse(in.subspan(pos));
            const std::span<const std::uint8_t> raw = in.subspan(pos, step.consumed);
            pos += step.consumed;
            if (step.event == websocket::FrameParser::Event::need_more) break;
            if (step.event == websocket::FrameParser::Event::error) {
                why = std::string(is_request(dir) ? "client" : "server") + " WebSocket frames on GET " + ws_path_ +
                      ": " + step.error;
                co_await ws_end(Reason::malformed_websocket, websocket::kCloseProtocolError, why, no_rule);
                co_return false;
            }
            const bool control = parser.header().control();
            if (step.event == websocket::FrameParser::Event::header) {
                if (control) {
                    s.control.assign(raw.begin(), raw.end());
                    continue;
                }
                if (parser.message_start()) ws_begin_message(dir, s);
                if (!parser.message_compressed() && s.size + parser.header().length > limit) {
                    // Refused by its header: nothing of a message that cannot pass is waited for.
                    why = ws_describe(dir, parser) + ": longer than inspection.websocket_max_message_bytes (" +
                          std::to_string(limit) + ")";
                    co_await ws_end(Reason::websocket_too_big, websocket::kCloseMessageTooBig, why, no_rule);
                    co_return false;
                }
                ws_data(s, raw);
                continue;
            }
            if (step.event == websocket::FrameParser::Event::payload) {
                if (control) {
                    s.control.insert(s.control.end(), raw.begin(), raw.end());
                    continue;
                }
                ws_data(s, raw);
                if (parser.message_compressed()) {
                    const auto r = s.inflater->feed(step.payload, limit, sink);
                    if (r == websocket::MessageInflater::Result::corrupt) {
                        why = ws_describe(dir, parser) + ": its permessage-deflate data does not decode";
                        co_await ws_end(Reason::malformed_websocket, websocket::kCloseProtocolError, why, no_rule);
                        co_return false;
                    }
                    if (r == websocket::MessageInflater::Result::too_big) s.size = limit + 1;
                } else if (s.size + step.payload.size() > limit) {
                    s.size = limit + 1;
                } else {
                    ws_inspect(dir, s, step.payload);
                }
                if (s.size > limit) {
                    why = ws_describe(dir, parser) + ": longer than inspection.websocket_max_message_bytes (" +
                          std::to_string(limit) + ")";
                    co_await ws_end(Reason::websocket_too_big, websocket::kCloseMessageTooBig, why, no_rule);
                    co_return false;
                }
                if (s.verdict.blocked()) {
                    co_await ws_block(dir, s);
                    co_return false;
                }
                continue;
            }
            // Event::frame_end
            if (control) {
                if (parser.header().opcode == websocket::Opcode::close && parser.in_message()) {
                    // The sender closes inside a fragmented message: it never completes.
                    s.held.clear();
                    s.inspection.reset();
                }
                // Control frames pass at once, even between the fragments of a held message.
                s.out.insert(s.out.end(), s.control.begin(), s.control.end());
                s.control.clear();
                continue;
            }
            if (!parser.header().fin) continue;
            // The message is complete: its verdict decides whether its held frames pass.
            if (parser.message_compressed()) {
                const auto r = s.inflater->end_message(limit, sink);
                if (r != websocket::MessageInflater::Result::ok) {
                    why = ws_describe(dir, parser) +
                          (r == websocket::MessageInflater::Result::corrupt
                               ? ": its permessage-deflate data does not decode"
                               : ": longer than inspection.websocket_max_message_bytes");
                    const bool corrupt = r == websocket::MessageInflater::Result::corrupt;
                    co_await ws_end(corrupt ? Reason::malformed_websocket : Reason::websocket_too_big,
                                    corrupt ? websocket::kCloseProtocolError : websocket::kCloseMessageTooBig, why,
                                    no_rule);
                    co_return false;
                }
                if (s.verdict.blocked()) {
                    co_await ws_block(dir, s);
                    co_return false;
                }
            }
            if (!s.decided) {
                // What came before this message goes on while the engine decides.
                {
                    const bool ok_out = co_await ws_write_out(dir, s);
                    if (!ok_out) co_return false;
                }
                final = co_await final_verdict(*s.inspection, verdict_timeout());
                if (ended_) co_return false;
                if (final.rewrite) final = refuse_rewrite(final, "a WebSocket message is relayed only unmodified");
                if (final.kind == Verdict::Kind::allow) note_allow([&] { return ws_describe(dir, *s.parser); }, final);
                if (final.blocked()) {
                    s.verdict = std::move(final);
                    co_await ws_block(dir, s);
                    co_return false;
                }
            }
            s.out.insert(s.out.end(), s.held.begin(), s.held.end());
            s.held.clear();
            s.inspection.reset();
            s.holding = true;
        }
        ws_flush_streaming(s);
        {
            const bool ok = co_await ws_write_out(dir, s);
            co_return ok;
        }
    }

    awaitable<void> ws_block(Direction dir, WsSide& s) {
        const Verdict v = s.verdict;
        const std::string what = ws_describe(dir, *s.parser);
        p_.metrics.count_block(v.rule);
        s.held.clear();
        // Whole messages allowed earlier in this read still go before the close.
        co_await ws_write_out(dir, s);
        const std::string detail = what + " matched rule " + v.rule + (v.note.empty() ? "" : " (" + v.note + ")");
        co_await ws_end(Reason::inspection, websocket::kClosePolicyViolation, detail, v.rule);
    }

    // Ends the WebSocket: a close frame with `code` to each side whose stream is not being
    // written to at this moment (then a clean TLS close), and the log's reason and detail.
    // (Arguments are named objects of the caller's: GCC 12 mishandles temporaries bound to
    // a coroutine's reference parameters.)
    awaitable<void> ws_end(Reason reason, std::uint16_t code, const std::string& detail, const std::string& rule) {
        if (ended_) co_return;
        ended_ = true;
        outcome_.reason = reason;
        outcome_.rule = rule;
        outcome_.detail = detail;
        const std::string close_reason = reason == Reason::inspection ? "blocked by inspection: rule " + rule
                                         : reason == Reason::websocket_too_big ? std::string("message too big")
                                                                               : std::string("protocol error");
        const bool client_free = !writing_client_;
        const bool upstream_free = !writing_upstream_;
        if (upstream_free) {
            const auto frame = websocket::close_frame(code, close_reason, true);
            const tls::IoStatus st = co_await upstream_.write_all(frame);
            if (st == tls::IoStatus::ok) co_await upstream_.close_notify();
        }
        tls::abort_socket(upstream_.socket());
        if (client_free) {
            const auto frame = websocket::close_frame(code, close_reason, false);
            const tls::IoStatus st = co_await client_.write_all(frame);
            if (st == tls::IoStatus::ok) co_await client_.close_notify();
            // The client answers the close (and may still be sending): read and drop that
            // rather than reset the connection under the close frame.
            outcome_.page_sent = st == tls::IoStatus::ok;
        }
        asio::error_code ec;
        client_.socket().shutdown(asio::socket_base::shutdown_send, ec);
        client_.socket().cancel(ec);
    }

    awaitable<void> malformed(Direction, const std::string& why) {
        if (ended_) co_return;
        outcome_.reason = Reason::malformed_http;
        outcome_.detail = why;
        abort_both();
    }

    void abort_both() {
        ended_ = true;
        tls::abort_socket(client_.socket());
        tls::abort_socket(upstream_.socket());
    }

    tls::ByteStream& client_;
    tls::ByteStream& upstream_;
    bool writing_client_ = false, writing_upstream_ = false;  // a write to that side is under way
    bool websocket_ = false;                                   // the connection became a WebSocket
    std::string ws_path_;                                      // its upgrade request's path (logs)
    std::string ws_target_;                                    // and target (the inspector)
    std::unique_ptr<WsSide> ws_[2];  // by side(): the client's frames, the server's (made at the upgrade only)
    RelayParams p_;
    http::MessageLimits limits_;
    RelayOutcome outcome_;
    std::deque<Request> outstanding_;  // forwarded requests without a final response yet
    std::uint64_t requests_seen_ = 0;
    bool response_busy_ = false;  // the response side is inside a message
    bool ended_ = false;          // the relay is ending the connection on purpose
    bool opaque_ = false;         // non-HTTP relayed uninspected (non_http = "tunnel")
    std::optional<std::string> pending_page_;
};

}  // namespace

awaitable<RelayOutcome> inspecting_relay(tls::ByteStream& client, tls::ByteStream& upstream,
                                         const RelayParams& params) {
    Relay relay(client, upstream, params);
    RelayOutcome out = co_await relay.run();
    co_return out;
}

}  // namespace proxy::inspect
