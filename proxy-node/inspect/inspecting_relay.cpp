#include "inspect/inspecting_relay.hpp"

#include "http/error_page.hpp"
#include "http/message_parser.hpp"
#include "http/text.hpp"
#include "inspect/content_decoding.hpp"

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
using http::trim_ows;
using http::MessageParser;
using Event = MessageParser::Event;
using namespace asio::experimental::awaitable_operators;

// A request blocked before it went upstream: the rest of its body is read and dropped (up
// to this much) so that the client, which is still sending, reads the block page instead
// of a reset.
constexpr std::uint64_t kMaxDiscardBytes = 4 << 20;
// Paths in log details are cut to this length (and never carry the query).
constexpr std::size_t kMaxLoggedPath = 200;

void stop_socket(asio::ip::tcp::socket& s) {
    asio::error_code ec;
    if (!s.is_open()) return;
    s.shutdown(asio::socket_base::shutdown_both, ec);
    s.cancel(ec);
}

std::string loggable_path(std::string_view target) {
    target = target.substr(0, target.find_first_of("?#"));
    if (target.size() > kMaxLoggedPath) return std::string(target.substr(0, kMaxLoggedPath)) + "...";
    return std::string(target);
}

// The engine's final verdict. An engine that answers inline (the rule set) costs no
// suspension and no timer; one that answers later, from any thread, wakes this coroutine
// through a timer on its own executor.
struct PendingVerdict {
    std::mutex mu;
    std::optional<Verdict> verdict;
    std::optional<asio::steady_timer> wake;  // made only when the verdict is not there at once
};

awaitable<Verdict> final_verdict(Inspection& inspection) {
    const asio::any_io_executor ex = co_await asio::this_coro::executor;
    auto pending = std::make_shared<PendingVerdict>();
    inspection.finish([pending](Verdict v) {
        std::lock_guard lock(pending->mu);
        if (!pending->wake) {
            pending->verdict = std::move(v);
            return;
        }
        asio::post(pending->wake->get_executor(), [pending, v = std::move(v)]() mutable {
            pending->verdict = std::move(v);
            pending->wake->cancel();
        });
    });
    {
        std::lock_guard lock(pending->mu);
        if (!pending->verdict) pending->wake.emplace(ex, asio::steady_timer::time_point::max());
    }
    while (!pending->verdict) {
        asio::error_code ec;
        co_await pending->wake->async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    Verdict out = std::move(*pending->verdict);
    co_return out;
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

    // The media type of `content_type` (before any parameter) is one of inspection.stream_types.
    bool is_stream_type(std::string_view content_type) const {
        const std::string_view media = trim_ows(content_type.substr(0, content_type.find(';')));
        return std::any_of(p_.config.stream_types.begin(), p_.config.stream_types.end(),
                           [&](const std::string& t) { return iequals(media, t); });
    }

    awaitable<void> pump(Direction dir) {
        const bool req = is_request(dir);
        tls::ByteStream* const from_ptr = req ? &client_ : &upstream_;
        tls::ByteStream& from = *from_ptr;
        tls::ByteStream* const to_ptr = req ? &upstream_ : &client_;
        tls::ByteStream& to = *to_ptr;
        MessageParser parser(req ? MessageParser::Kind::request : MessageParser::Kind::response, limits_);
        std::vector<std::uint8_t> buf(p_.buffer_bytes);
        Message msg;
        // Locals with destructors live here, not inside the loops: GCC 12 mis-destroys such
        // loop-scoped objects across co_await.
        MessageParser::Step step;
        std::string why;
        for (;;) {
            tls::IoStatus st;
            std::size_t n = co_await from.read_some(buf, st);
            if (ended_) co_return;
            if (n == 0) {
                co_await at_eof(dir, parser, msg, st);
                co_return;
            }
            while (n + tls::kMaxRecordPlaintext <= buf.size()) {
                std::size_t more = from.read_buffered({buf.data() + n, buf.size() - n});
                if (more == 0) break;
                n += more;
            }
            p_.activity();
            const std::span<const std::uint8_t> in(buf.data(), n);
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
                        // An upgrade (WebSocket): what follows is not HTTP.
                        if (!p_.config.non_http_tunnel) {
                            why = "protocol upgrade (101 Switching Protocols) after " + msg.request.method +
                                  " " + msg.request.path;
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
            if (opaque_) continue;
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
            msg.request = {h.method, loggable_path(h.target)};
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
        info.content_type = h.header("Content-Type").value_or("");
        // A stream by design (server-sent events and the like) never ends: held, its first
        // events would wait for hold_bytes. It is passed on as it comes, and still scanned.
        if (is_stream_type(info.content_type)) msg.holding = false;
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
        Verdict v = msg.inspection->body(bytes);
        if (v.blocked()) {
            const bool r = co_await block(dir, msg, v);
            co_return r;
        }
        if (v.kind == Verdict::Kind::allow) {
            msg.decided = true;
            if (!v.note.empty()) {
                ++p_.metrics.over_limit;
                if (outcome_.detail.empty()) outcome_.detail = describe(dir, msg) + ": " + v.note;
            }
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
            Verdict final = co_await final_verdict(*msg.inspection);
            v = std::move(final);
        }
        if (ended_) co_return false;
        if (v.blocked()) {
            const bool held = co_await block(dir, msg, v);
            if (!held) co_return false;
            // A held request blocked at its end: nothing more of it to drop, answer now.
            const bool r = co_await refuse_request(msg);
            co_return r;
        }
        tls::ByteStream* const to_ptr = req ? &upstream_ : &client_;
        tls::ByteStream& to = *to_ptr;
        {
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
        const tls::IoStatus st = co_await to.write_all(bytes);
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
        if (!opaque_) {
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
            co_await deliver_page(v.rule, false);
            co_return false;
        }
        if (msg.forwarded) {
            // Part of the upload went out: the server must not get the rest. A page is
            // still possible if nothing of this request's response has been sent.
            stop_socket(upstream_.socket());
            if (outstanding_.size() == 1 && !response_busy_) {
                co_await deliver_page(v.rule, true);
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
        pending_page_ = http::block_response(p_.host, msg.block.rule, true);
        if (outstanding_.empty() && !response_busy_) co_await deliver_page();
        // else the response pump delivers it when the earlier responses are complete.
        co_return false;
    }

    awaitable<void> deliver_page(const std::string& rule, bool upload) {
        pending_page_ = http::block_response(p_.host, rule, upload);
        co_await deliver_page();
    }

    awaitable<void> deliver_page() {
        ended_ = true;
        stop_socket(upstream_.socket());
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

    awaitable<void> malformed(Direction, const std::string& why) {
        if (ended_) co_return;
        outcome_.reason = Reason::malformed_http;
        outcome_.detail = why;
        abort_both();
    }

    void abort_both() {
        ended_ = true;
        stop_socket(client_.socket());
        stop_socket(upstream_.socket());
    }

    tls::ByteStream& client_;
    tls::ByteStream& upstream_;
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
