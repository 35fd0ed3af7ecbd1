#include "h2/h2_relay.hpp"

#include "http/error_page.hpp"
#include "http/text.hpp"
#include "inspect/content_decoding.hpp"
#include "inspect/relay_policy.hpp"

#include <nghttp2/nghttp2.h>

#include <asio/experimental/awaitable_operators.hpp>
#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

// GCC 12 reports a false -Wmismatched-new-delete on large coroutine frames (see
// inspect/inspecting_relay.cpp).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace proxy::h2 {

namespace {

using asio::awaitable;
using inspect::Direction;
using inspect::Inspection;
using inspect::MessageInfo;
using inspect::Verdict;
using namespace asio::experimental::awaitable_operators;

// Concurrent streams a client may open (SETTINGS_MAX_CONCURRENT_STREAMS), as browsers and
// servers commonly use.
constexpr std::uint32_t kMaxConcurrentStreams = 100;
// Header blocks over that limit a connection may send before it is taken for abuse.
constexpr unsigned kMaxOversizedHeaderBlocks = 8;
// Control frames with no work for the node (PING, SETTINGS, PRIORITY, an empty DATA without
// END_STREAM): a token bucket per peer. A browser sends a handful per connection.
constexpr double kControlBurst = 1000;
constexpr double kControlPerSecond = 100;
// RST_STREAM from the client: nghttp2's token bucket (CVE-2023-44487, rapid reset).
constexpr std::uint64_t kResetBurst = 1000;
constexpr std::uint64_t kResetsPerSecond = 33;
// What one write gathers from a session.
constexpr std::size_t kWriteGather = 64 * 1024;

struct SessionDeleter {
    void operator()(nghttp2_session* s) const { nghttp2_session_del(s); }
};
using SessionPtr = std::unique_ptr<nghttp2_session, SessionDeleter>;
struct CallbacksDeleter {
    void operator()(nghttp2_session_callbacks* c) const { nghttp2_session_callbacks_del(c); }
};
struct OptionDeleter {
    void operator()(nghttp2_option* o) const { nghttp2_option_del(o); }
};

struct Header {
    std::string name, value;
    std::uint8_t flags = NGHTTP2_NV_FLAG_NONE;  // NO_INDEX is passed on (a never-indexed field stays so)
};

std::vector<nghttp2_nv> to_nv(const std::vector<Header>& headers) {
    std::vector<nghttp2_nv> nv;
    nv.reserve(headers.size());
    for (const auto& h : headers)
        nv.push_back({reinterpret_cast<std::uint8_t*>(const_cast<char*>(h.name.data())),
                      reinterpret_cast<std::uint8_t*>(const_cast<char*>(h.value.data())), h.name.size(),
                      h.value.size(), h.flags});
    return nv;
}

const std::string* find(const std::vector<Header>& headers, std::string_view name) {
    for (const auto& h : headers)
        if (h.name == name) return &h.value;
    return nullptr;
}

// One direction of a stream: the request (client to upstream) or the response.
struct Half {
    std::vector<Header> headers;  // the head, as received (pseudo-headers first)
    std::vector<Header> trailers;
    std::size_t header_bytes = 0;  // decoded, as SETTINGS_MAX_HEADER_LIST_SIZE counts them
    std::unique_ptr<Inspection> inspection;
    bool started = false;       // its head is complete (the inspection began)
    bool holding = true;        // held until the verdict (or hold_bytes)
    bool decided = false;       // allowed before its end: no final verdict needed
    bool head_sent = false;     // submitted to the other session
    bool end_received = false;  // END_STREAM from the sender
    bool verdict_ok = false;    // its final verdict allowed it: its end may go
    bool dropped = false;       // blocked: what still comes is discarded
    bool synthetic = false;     // the node's page, not the peer's bytes
    bool deferred = false;      // its data source is waiting for bytes
    std::vector<std::uint8_t> pending;  // body bytes received, not yet handed to the other session
    std::size_t offset = 0;             // of pending, already handed on
    std::size_t unconsumed = 0;         // of pending, not yet returned to the sender's window
    std::size_t available() const { return pending.size() - offset; }
};

struct Stream {
    std::int32_t client_id = 0;
    std::int32_t upstream_id = -1;  // once submitted upstream
    Half request, response;
    std::string method, target, path;  // :method, :path, and the path as logged
    bool client_closed = false, upstream_closed = false;
    bool reset_by_node = false;     // the node reset the client stream
    bool upstream_ignored = false;  // the upstream stream was reset by the node: its frames are dropped
    bool response_sent = false;     // the client has the response's END_STREAM
};

// A final verdict that may come later, from another thread (an engine over ICAP), or never
// (inspection.verdict_timeout_ms). Touched by the relay's thread only, except `mu` and
// `verdict` for the engine's answer.
class Relay;
struct VerdictSlot {
    explicit VerdictSlot(const asio::any_io_executor& ex) : timer(ex) {}
    std::mutex mu;
    bool waiting = false;            // finish() returned without an answer
    std::optional<Verdict> verdict;  // an answer given inside finish()
    Relay* relay = nullptr;          // null once the relay ended or the verdict was used
    std::int32_t stream_id = 0;
    Direction dir = Direction::request;
    asio::steady_timer timer;
};

// How an engine's thread wakes the relay when it has taken enough of a backlog
// (Inspection::ready): a post to the relay's executor, ignored once the relay ended.
struct EngineWake {
    Relay* relay = nullptr;  // touched on the relay's executor only
};

struct Peer {
    Relay* relay = nullptr;
    bool client = false;  // the client's side (our server session) or the upstream's
    tls::ByteStream* stream = nullptr;
    SessionPtr session;
    std::optional<asio::steady_timer> wake;  // the writer waits on it; cancel() wakes it
    bool broken = false;                     // closed, reset or a write failed: nothing more to or from it
    bool over = false;                       // its session has ended (want neither read nor write)
    bool terminated = false;                 // GOAWAY queued for an error: nothing more is read from it
    double tokens = kControlBurst;           // the control-frame bucket
    std::chrono::steady_clock::time_point refilled = std::chrono::steady_clock::now();
    unsigned oversized_headers = 0;
    std::uint64_t frames = 0;  // received
};

class Relay {
public:
    Relay(tls::ByteStream& client, tls::ByteStream& upstream, const inspect::RelayParams& params)
        : p_(params) {
        // (client_ and upstream_ are declared after p_; they are set up here.)
        client_.relay = upstream_.relay = this;
        client_.client = true;
        client_.stream = &client;
        upstream_.stream = &upstream;
        const std::size_t hold = p_.config.hold_bytes;
        // A held body must be able to pass hold_bytes on its window alone, and the held
        // bodies of a connection to fill its budget: then holding never stalls a sender.
        stream_window_ = static_cast<std::int32_t>(std::min<std::size_t>(hold + 64 * 1024, 1U << 30));
        hold_budget_ = std::max<std::size_t>(4 * hold, 1 << 20);
        connection_window_ =
            static_cast<std::int32_t>(std::min<std::size_t>(hold_budget_ + 2 * static_cast<std::size_t>(stream_window_), 1U << 30));
    }

    ~Relay() {
        for (auto& slot : slots_) {
            slot->relay = nullptr;
            slot->timer.cancel();
        }
        if (engine_wake_) engine_wake_->relay = nullptr;
    }

    awaitable<inspect::RelayOutcome> run() {
        const asio::any_io_executor ex = co_await asio::this_coro::executor;
        ex_ = ex;
        engine_wake_ = std::make_shared<EngineWake>();
        engine_wake_->relay = this;
        wake_fn_ = [token = engine_wake_, ex] {
            asio::post(ex, [token] {
                if (token->relay != nullptr) token->relay->on_engine_ready();
            });
        };
        client_.wake.emplace(ex, asio::steady_timer::time_point::max());
        upstream_.wake.emplace(ex, asio::steady_timer::time_point::max());
        if (!make_sessions()) {
            outcome_.reason = Reason::malformed_http2;
            outcome_.detail = "the HTTP/2 sessions could not be made";
            co_return outcome_;
        }
        ++p_.metrics.h2_connections;
        co_await (reader(client_) && writer(client_) && reader(upstream_) && writer(upstream_));
        for (auto& slot : slots_) {
            slot->relay = nullptr;
            slot->timer.cancel();
        }
        engine_wake_->relay = nullptr;
        std::string counts = "h2: " + std::to_string(streams_seen_) + " stream" + (streams_seen_ == 1 ? "" : "s") +
                             ", " + std::to_string(blocked_) + " blocked, " + std::to_string(resets_client_) +
                             " reset by the client, " + std::to_string(resets_upstream_) + " by the server, " +
                             std::to_string(resets_node_) + " by the node";
        outcome_.detail = outcome_.detail.empty() ? counts : outcome_.detail + "; " + counts;
        co_return outcome_;
    }

    // ---- nghttp2 callbacks (user_data is the Peer) ----

    static int on_begin_headers(nghttp2_session* session, const nghttp2_frame* frame, void* user_data) {
        Peer& peer = *static_cast<Peer*>(user_data);
        if (!peer.client || frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
            return 0;
        Relay& r = *peer.relay;
        auto s = std::make_unique<Stream>();
        s->client_id = frame->hd.stream_id;
        nghttp2_session_set_stream_user_data(session, s->client_id, s.get());
        r.streams_.emplace(s->client_id, std::move(s));
        ++r.streams_seen_;
        ++r.p_.metrics.h2_streams;
        return 0;
    }

    static int on_header(nghttp2_session* session, const nghttp2_frame* frame, const std::uint8_t* name,
                         std::size_t namelen, const std::uint8_t* value, std::size_t valuelen, std::uint8_t flags,
                         void* user_data) {
        Peer& peer = *static_cast<Peer*>(user_data);
        auto* s = static_cast<Stream*>(nghttp2_session_get_stream_user_data(session, frame->hd.stream_id));
        if (s == nullptr || frame->hd.type != NGHTTP2_HEADERS) return 0;
        if (!peer.client && s->upstream_ignored) return 0;
        Half& h = peer.client ? s->request : s->response;
        h.header_bytes += namelen + valuelen + 32;
        // The largest decoded header list is inspection.head_bytes, as for an HTTP/1.1 head
        // (SETTINGS_MAX_HEADER_LIST_SIZE; RFC 9113 6.5.2 counts name + value + 32 per field).
        // A longer one resets its stream: the HPACK-bomb bound.
        if (h.header_bytes > peer.relay->p_.config.head_bytes) {
            // Reset this stream (nghttp2 sends RST_STREAM); many such blocks are abuse.
            if (++peer.oversized_headers > kMaxOversizedHeaderBlocks) {
                peer.relay->abuse(peer, "header lists over " + std::to_string(peer.relay->p_.config.head_bytes) + " bytes decoded");
                return NGHTTP2_ERR_CALLBACK_FAILURE;
            }
            if (peer.client) peer.relay->count_node_reset(*s);
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
        auto& list = h.started ? h.trailers : h.headers;
        list.push_back({std::string(reinterpret_cast<const char*>(name), namelen),
                        std::string(reinterpret_cast<const char*>(value), valuelen),
                        static_cast<std::uint8_t>(flags & NGHTTP2_NV_FLAG_NO_INDEX)});
        return 0;
    }

    static int on_frame_recv(nghttp2_session* session, const nghttp2_frame* frame, void* user_data) {
        Peer& peer = *static_cast<Peer*>(user_data);
        Relay& r = *peer.relay;
        const std::uint8_t type = frame->hd.type;
        ++peer.frames;
        const bool end_stream = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
        if (type == NGHTTP2_PING || type == NGHTTP2_SETTINGS || type == NGHTTP2_PRIORITY ||
            (type == NGHTTP2_DATA && frame->hd.length == 0 && !end_stream)) {
            if (!r.take_token(peer)) {
                r.abuse(peer, "a flood of PING, SETTINGS, PRIORITY or empty DATA frames");
                return 0;
            }
        }
        if (type == NGHTTP2_GOAWAY && !peer.client) r.upstream_goaway_ = true;
        if (type == NGHTTP2_RST_STREAM && peer.client) ++r.client_rst_frames_;
        if (type != NGHTTP2_HEADERS && type != NGHTTP2_DATA) return 0;
        r.p_.activity();  // real progress (control frames alone do not keep a connection)
        auto* s = static_cast<Stream*>(nghttp2_session_get_stream_user_data(session, frame->hd.stream_id));
        if (s == nullptr) return 0;
        if (peer.client) {
            if (type == NGHTTP2_HEADERS && !s->request.started) r.start_message(*s, Direction::request, end_stream);
            if (end_stream) r.end_message(*s, Direction::request);
            return 0;
        }
        if (s->upstream_ignored) return 0;
        if (type == NGHTTP2_HEADERS && !s->response.started) {
            const std::string* status = find(s->response.headers, ":status");
            if (status != nullptr && status->size() == 3 && (*status)[0] == '1') {
                // Informational (100 Continue, 103 Early Hints): passed on at once.
                r.forward_interim(*s);
                return 0;
            }
            r.start_message(*s, Direction::response, end_stream);
        }
        if (end_stream) r.end_message(*s, Direction::response);
        return 0;
    }

    // nghttp2 ends a session by itself for some abuse (its RST_STREAM rate limit sends
    // GOAWAY INTERNAL_ERROR): the log says why.
    static int on_frame_send(nghttp2_session* session, const nghttp2_frame* frame, void* user_data) {
        Peer& peer = *static_cast<Peer*>(user_data);
        if (peer.client && (frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS) &&
            (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
            if (auto* s = static_cast<Stream*>(nghttp2_session_get_stream_user_data(session, frame->hd.stream_id))) {
                s->response_sent = true;
                peer.relay->stop_orphaned_request(*s);
            }
            return 0;
        }
        if (frame->hd.type != NGHTTP2_GOAWAY || frame->goaway.error_code == NGHTTP2_NO_ERROR || peer.terminated)
            return 0;
        Relay& r = *peer.relay;
        peer.terminated = true;
        if (r.abuse_noted_ || (r.outcome_.reason != Reason::none && r.outcome_.reason != Reason::inspection))
            return 0;
        if (!peer.client) {
            r.outcome_.reason = Reason::malformed_http2;
            r.outcome_.detail = std::string("server HTTP/2: the node sent GOAWAY ") +
                                nghttp2_http2_strerror(frame->goaway.error_code) +
                                (peer.frames == 0 ? " (the server selected h2 but does not speak it)" : "");
            return 0;
        }
        if (r.client_rst_frames_ >= kResetBurst) {
            r.abuse_noted_ = true;
            r.outcome_.reason = Reason::http2_flood;
            r.outcome_.detail = "client HTTP/2: rapid reset (" + std::to_string(r.client_rst_frames_) +
                                " streams reset by the client, over the RST_STREAM rate limit)";
        } else {
            r.outcome_.reason = Reason::malformed_http2;
            r.outcome_.detail = std::string("client HTTP/2: the node sent GOAWAY ") +
                                nghttp2_http2_strerror(frame->goaway.error_code);
        }
        return 0;
    }

    static int on_data_chunk(nghttp2_session* session, std::uint8_t, std::int32_t stream_id, const std::uint8_t* data,
                             std::size_t len, void* user_data) {
        Peer& peer = *static_cast<Peer*>(user_data);
        auto* s = static_cast<Stream*>(nghttp2_session_get_stream_user_data(session, stream_id));
        if (s == nullptr || (!peer.client && s->upstream_ignored)) {
            nghttp2_session_consume(session, stream_id, len);
            return 0;
        }
        peer.relay->body(*s, peer.client ? Direction::request : Direction::response, {data, len});
        return 0;
    }

    static int on_stream_close(nghttp2_session* session, std::int32_t stream_id, std::uint32_t error_code,
                               void* user_data) {
        Peer& peer = *static_cast<Peer*>(user_data);
        auto* s = static_cast<Stream*>(nghttp2_session_get_stream_user_data(session, stream_id));
        if (s == nullptr) return 0;
        if (peer.client) peer.relay->client_stream_closed(*s, error_code);
        else peer.relay->upstream_stream_closed(*s, error_code);
        return 0;
    }

    static ssize_t read_body(nghttp2_session* session, std::int32_t stream_id, std::uint8_t* buf, std::size_t length,
                             std::uint32_t* data_flags, nghttp2_data_source* source, void* user_data) {
        auto* s = static_cast<Stream*>(source->ptr);
        Relay& r = *static_cast<Peer*>(user_data)->relay;
        return r.provide(*s, session == r.upstream_.session.get() ? Direction::request : Direction::response,
                         stream_id, buf, length, data_flags);
    }

    void on_verdict(VerdictSlot& slot, Verdict v) {
        slot.relay = nullptr;
        slot.timer.cancel();
        auto it = streams_.find(slot.stream_id);
        if (it != streams_.end()) apply_verdict(*it->second, slot.dir, std::move(v));
        signal_both();
    }

    // An engine took enough of its backlog: the windows held back for it are returned.
    void on_engine_ready() {
        for (auto& [id, s] : streams_) {
            return_owed(*s, Direction::request);
            return_owed(*s, Direction::response);
        }
    }

    void on_verdict_timeout(VerdictSlot& slot) {
        auto it = streams_.find(slot.stream_id);
        slot.relay = nullptr;
        if (it == streams_.end()) return;
        Half& h = half(*it->second, slot.dir);
        Verdict v = h.inspection ? h.inspection->timed_out() : Verdict::failed("inspection", "no verdict in time");
        apply_verdict(*it->second, slot.dir, std::move(v));
        signal_both();
    }

private:
    bool make_sessions() {
        nghttp2_session_callbacks* cb_raw = nullptr;
        if (nghttp2_session_callbacks_new(&cb_raw) != 0) return false;
        std::unique_ptr<nghttp2_session_callbacks, CallbacksDeleter> cb(cb_raw);
        nghttp2_session_callbacks_set_on_begin_headers_callback(cb.get(), on_begin_headers);
        nghttp2_session_callbacks_set_on_header_callback(cb.get(), on_header);
        nghttp2_session_callbacks_set_on_frame_recv_callback(cb.get(), on_frame_recv);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb.get(), on_data_chunk);
        nghttp2_session_callbacks_set_on_stream_close_callback(cb.get(), on_stream_close);
        nghttp2_session_callbacks_set_on_frame_send_callback(cb.get(), on_frame_send);
        nghttp2_option* opt_raw = nullptr;
        if (nghttp2_option_new(&opt_raw) != 0) return false;
        std::unique_ptr<nghttp2_option, OptionDeleter> opt(opt_raw);
        // Windows are returned only as bodies move on (or are dropped): flow control, not
        // buffering, paces a sender the receiver cannot keep up with.
        nghttp2_option_set_no_auto_window_update(opt.get(), 1);
        nghttp2_option_set_stream_reset_rate_limit(opt.get(), kResetBurst, kResetsPerSecond);
        nghttp2_option_set_max_settings(opt.get(), 32);
        nghttp2_option_set_max_outbound_ack(opt.get(), 1000);
        nghttp2_option_set_max_continuations(opt.get(), 8);
        nghttp2_session* raw = nullptr;
        if (nghttp2_session_server_new2(&raw, cb.get(), &client_, opt.get()) != 0) return false;
        client_.session.reset(raw);
        raw = nullptr;
        if (nghttp2_session_client_new2(&raw, cb.get(), &upstream_, opt.get()) != 0) return false;
        upstream_.session.reset(raw);

        const nghttp2_settings_entry to_client[] = {
            {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, kMaxConcurrentStreams},
            {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<std::uint32_t>(stream_window_)},
            {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, static_cast<std::uint32_t>(p_.config.head_bytes)},
        };
        const nghttp2_settings_entry to_upstream[] = {
            {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
            {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<std::uint32_t>(stream_window_)},
            {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, static_cast<std::uint32_t>(p_.config.head_bytes)},
        };
        if (nghttp2_submit_settings(client_.session.get(), NGHTTP2_FLAG_NONE, to_client, std::size(to_client)) != 0 ||
            nghttp2_submit_settings(upstream_.session.get(), NGHTTP2_FLAG_NONE, to_upstream, std::size(to_upstream)) != 0)
            return false;
        nghttp2_session_set_local_window_size(client_.session.get(), NGHTTP2_FLAG_NONE, 0, connection_window_);
        nghttp2_session_set_local_window_size(upstream_.session.get(), NGHTTP2_FLAG_NONE, 0, connection_window_);
        return true;
    }

    // ---- the four coroutines ----

    awaitable<void> reader(Peer& peer) {
        const std::size_t size = p_.buffer_bytes;
        auto storage = std::make_unique_for_overwrite<std::uint8_t[]>(size);
        for (;;) {
            if (peer.broken || peer.over || peer.terminated || !nghttp2_session_want_read(peer.session.get()))
                co_return;
            tls::IoStatus st;
            const std::size_t n = co_await peer.stream->read_releasing(storage, size, st);
            if (peer.broken || peer.over || peer.terminated) co_return;
            if (n == 0) {
                peer_gone(peer, st == tls::IoStatus::eof ? "closed the connection" : "connection failed");
                co_return;
            }
            const ssize_t rv = nghttp2_session_mem_recv(peer.session.get(), storage.get(), n);
            if (rv < 0) {
                protocol_error(peer, static_cast<int>(rv));
                co_return;
            }
            check_over(peer);
            signal_both();
        }
    }

    awaitable<void> writer(Peer& peer) {
        std::vector<std::uint8_t> out;
        asio::error_code ec;
        for (;;) {
            if (peer.broken) break;
            out.clear();
            while (out.size() < kWriteGather) {
                const std::uint8_t* data = nullptr;
                const ssize_t n = nghttp2_session_mem_send(peer.session.get(), &data);
                if (n < 0) {
                    protocol_error(peer, static_cast<int>(n));
                    peer.broken = true;
                    break;
                }
                if (n == 0) break;
                out.insert(out.end(), data, data + n);
            }
            if (!out.empty()) {
                const tls::IoStatus st = co_await peer.stream->write_all(out);
                if (st != tls::IoStatus::ok) {
                    peer_gone(peer, "write failed");
                    break;
                }
                continue;
            }
            check_over(peer);
            if (peer.over) break;
            co_await peer.wake->async_wait(asio::redirect_error(asio::use_awaitable, ec));
        }
        // This side is done: a clean close if it still can take one, then the socket.
        if (!peer.broken) co_await peer.stream->close_notify();
        peer.broken = true;
        tls::abort_socket(peer.stream->socket());
        signal_both();
    }

    void signal(Peer& peer) {
        if (peer.wake) peer.wake->cancel();
    }
    void signal_both() {
        signal(client_);
        signal(upstream_);
    }

    // A session that wants neither to read nor to write is over; when the client's is, the
    // upstream's is ended too (GOAWAY), and when the upstream's is, the client is told to
    // open no more streams here (GOAWAY) and its open ones finish.
    void check_over(Peer& peer) {
        if (peer.over) return;
        if (nghttp2_session_want_read(peer.session.get()) || nghttp2_session_want_write(peer.session.get())) return;
        peer.over = true;
        if (peer.client) {
            end_upstream();
        } else {
            upstream_ended("the server ended its HTTP/2 connection");
        }
        signal_both();
    }

    void end_upstream() {
        if (!upstream_.over && !upstream_.broken) nghttp2_session_terminate_session(upstream_.session.get(), NGHTTP2_NO_ERROR);
        upstream_.over = upstream_.over || !nghttp2_session_want_write(upstream_.session.get());
    }

    // The peer closed, failed or took no more writes.
    void peer_gone(Peer& peer, const std::string&) {
        if (peer.broken) return;
        peer.broken = true;
        peer.over = true;
        if (peer.client) {
            end_upstream();
            upstream_.broken = upstream_.broken || upstream_.over;
            if (upstream_.over) tls::abort_socket(upstream_.stream->socket());
        } else {
            upstream_ended("the server closed the connection");
        }
        signal_both();
    }

    void protocol_error(Peer& peer, int rv) {
        const bool flood = rv == NGHTTP2_ERR_FLOODED || rv == NGHTTP2_ERR_CALLBACK_FAILURE ||
                           rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS;
        if (outcome_.reason == Reason::none || outcome_.reason == Reason::inspection) {
            if (!(flood && abuse_noted_)) {
                outcome_.reason = flood && peer.client ? Reason::http2_flood : Reason::malformed_http2;
                outcome_.detail = std::string(peer.client ? "client" : "server") + " HTTP/2: " + nghttp2_strerror(rv);
            }
        }
        peer.terminated = true;
        nghttp2_session_terminate_session(peer.session.get(),
                                          flood ? NGHTTP2_ENHANCE_YOUR_CALM : NGHTTP2_PROTOCOL_ERROR);
        // The GOAWAY is written, then the session is over.
        if (!peer.client) upstream_ended("the server broke HTTP/2");
        signal_both();
    }

    // A peer abuses the protocol: GOAWAY (ENHANCE_YOUR_CALM), logged http2_flood.
    void abuse(Peer& peer, const std::string& what) {
        if (!abuse_noted_) {
            abuse_noted_ = true;
            outcome_.reason = peer.client ? Reason::http2_flood : Reason::malformed_http2;
            outcome_.detail = std::string(peer.client ? "client" : "server") + " HTTP/2: " + what;
        }
        peer.terminated = true;
        nghttp2_session_terminate_session(peer.session.get(), NGHTTP2_ENHANCE_YOUR_CALM);
        if (!peer.client) upstream_ended("the server abused HTTP/2");
    }

    bool take_token(Peer& peer) {
        const auto now = std::chrono::steady_clock::now();
        const double elapsed = std::chrono::duration<double>(now - peer.refilled).count();
        peer.refilled = now;
        peer.tokens = std::min(kControlBurst, peer.tokens + elapsed * kControlPerSecond);
        if (peer.tokens < 1) return false;
        peer.tokens -= 1;
        return true;
    }

    // ---- streams ----

    static Half& half(Stream& s, Direction d) { return d == Direction::request ? s.request : s.response; }

    std::string describe(const Stream& s, Direction d) const {
        return std::string("h2 ") + std::string(inspect::name(d)) +
               (d == Direction::request ? " body of " : " body to ") + s.method + " " + s.path;
    }

    void start_message(Stream& s, Direction d, bool no_body) {
        Half& h = half(s, d);
        h.started = true;
        MessageInfo info;
        info.direction = d;
        info.carrier = inspect::Carrier::http2;
        info.host = p_.host;
        if (d == Direction::request) {
            const std::string* method = find(h.headers, ":method");
            const std::string* path = find(h.headers, ":path");
            s.method = method != nullptr ? *method : "";
            s.target = path != nullptr ? *path : "";
            s.path = inspect::loggable_path(s.target);
            if (s.method == "CONNECT") {
                // A tunnel inside the intercepted connection would carry bytes no rule sees.
                h.dropped = true;
                send_page(s, http::error_page(Reason::method_not_allowed, p_.host,
                                              "CONNECT inside an intercepted HTTP/2 connection is not relayed"));
                return;
            }
            if (const std::string* expect = find(h.headers, "expect"); expect && http::iequals(*expect, "100-continue"))
                h.holding = false;  // the client waits for 100 Continue before it sends the body
            ++p_.metrics.requests;
        } else {
            const std::string* status = find(h.headers, ":status");
            if (status != nullptr) std::from_chars(status->data(), status->data() + status->size(), info.status);
            ++p_.metrics.responses;
        }
        info.method = s.method;
        info.target = s.target;
        info.no_body = no_body;  // (a Content-Length of 0 below says so too)
        if (const std::string* len = find(h.headers, "content-length")) {
            std::uint64_t n = 0;
            if (std::from_chars(len->data(), len->data() + len->size(), n).ec == std::errc()) {
                info.content_length = n;
                if (n == 0) info.no_body = true;
            }
        }
        const std::string* type = find(h.headers, "content-type");
        info.content_type = type != nullptr ? std::string_view(*type) : std::string_view();
        std::vector<std::pair<std::string_view, std::string_view>> fields;
        fields.reserve(h.headers.size());
        for (const Header& f : h.headers)
            if (!f.name.starts_with(':')) fields.emplace_back(f.name, f.value);
        info.headers = fields;
        if (inspect::is_stream_type(p_.config, info.content_type)) h.holding = false;
        h.inspection = p_.inspector.begin(info);
        if (const std::string* coding = find(h.headers, "content-encoding"))
            h.inspection = inspect::decoding_inspection(std::move(h.inspection), inspect::parse_content_coding(*coding));
        if (!h.holding) release(s, d);
    }

    void body(Stream& s, Direction d, std::span<const std::uint8_t> bytes) {
        Half& h = half(s, d);
        Peer& from = d == Direction::request ? client_ : upstream_;
        const std::int32_t id = d == Direction::request ? s.client_id : s.upstream_id;
        if (h.dropped || h.synthetic) {
            nghttp2_session_consume(from.session.get(), id, bytes.size());
            return;
        }
        (d == Direction::request ? p_.metrics.request_bytes : p_.metrics.response_bytes) += bytes.size();
        p_.activity();
        if (!h.decided && h.inspection) {
            Verdict v = inspect::fail_closed(h.inspection->body(bytes));
            if (v.blocked()) {
                nghttp2_session_consume(from.session.get(), id, bytes.size());
                block(s, d, v);
                return;
            }
            if (v.kind == Verdict::Kind::allow) {
                h.decided = true;
                note_allow(s, d, v);
            }
        }
        h.pending.insert(h.pending.end(), bytes.begin(), bytes.end());
        h.unconsumed += bytes.size();
        if (h.head_sent) {
            resume(s, d);
            return;
        }
        held_ += bytes.size();
        // Past hold_bytes (or the connection's budget for held bodies) it streams; its end
        // still waits for the verdict.
        if (h.decided || h.available() > p_.config.hold_bytes || held_ > hold_budget_) release(s, d);
    }

    void end_message(Stream& s, Direction d) {
        Half& h = half(s, d);
        h.end_received = true;
        if (h.dropped || h.synthetic) return;
        if (h.decided || !h.inspection) {
            apply_verdict(s, d, Verdict::allow());
            return;
        }
        auto slot = std::make_shared<VerdictSlot>(ex_);
        slot->relay = this;
        slot->stream_id = s.client_id;
        slot->dir = d;
        h.inspection->finish([slot](Verdict v) {
            std::lock_guard lock(slot->mu);
            if (!slot->waiting) {
                slot->verdict = std::move(v);
                return;
            }
            asio::post(slot->timer.get_executor(), [slot, v = std::move(v)]() mutable {
                if (slot->relay != nullptr) slot->relay->on_verdict(*slot, std::move(v));
            });
        });
        std::optional<Verdict> now;
        {
            std::lock_guard lock(slot->mu);
            if (slot->verdict) now = std::move(slot->verdict);
            else slot->waiting = true;
        }
        if (now) {
            apply_verdict(s, d, std::move(*now));
            return;
        }
        std::erase_if(slots_, [](const std::shared_ptr<VerdictSlot>& x) { return x->relay == nullptr; });
        slots_.push_back(slot);
        slot->timer.expires_after(std::chrono::milliseconds(p_.config.verdict_timeout_ms));
        slot->timer.async_wait([slot](const asio::error_code& ec) {
            if (!ec && slot->relay != nullptr) slot->relay->on_verdict_timeout(*slot);
        });
    }

    // An allow that says something (a scan limit, an engine that failed with on_error =
    // allow): the first such note goes into the log's detail.
    void note_allow(Stream& s, Direction d, const Verdict& v) {
        if (v.over_limit) ++p_.metrics.over_limit;
        if (!v.note.empty() && note_.empty()) note_ = describe(s, d) + ": " + v.note;
    }

    bool engine_backlogged(Half& h) const { return h.inspection && !h.decided && !h.inspection->ready(wake_fn_); }

    // The window for bytes that moved on while the engine lagged.
    void return_owed(Stream& s, Direction d) {
        Half& h = half(s, d);
        if (h.synthetic || h.dropped || engine_backlogged(h)) return;
        const std::size_t still_here = h.available();
        if (h.unconsumed <= still_here) return;
        const std::size_t owed = h.unconsumed - still_here;
        h.unconsumed = still_here;
        Peer& from = d == Direction::request ? client_ : upstream_;
        const std::int32_t id = d == Direction::request ? s.client_id : s.upstream_id;
        if (id >= 0) nghttp2_session_consume(from.session.get(), id, owed);
        signal(from);
    }

    void apply_verdict(Stream& s, Direction d, Verdict v) {
        Half& h = half(s, d);
        if (h.dropped || h.synthetic) return;
        v = inspect::fail_closed(std::move(v));
        if (v.rewrite && (d != Direction::request || h.head_sent))
            v = inspect::refuse_rewrite(v, d != Direction::request
                                               ? "it answers a response"
                                               : "part of the request had gone upstream (past hold_bytes, or after 100 Continue)");
        if (v.blocked()) {
            block(s, d, v);
            return;
        }
        if (v.rewrite) rewrite_request(s, *v.rewrite);
        h.verdict_ok = true;
        h.inspection.reset();
        return_owed(s, d);
        note_allow(s, d, v);
        if (!h.head_sent) release(s, d);
        else resume(s, d);
    }

    // An engine's modified request (Verdict::rewrite) replaces the held one: its method,
    // path, fields (without connection-specific ones) and body; the client's body goes back
    // to its window. :scheme and :authority stay the client's.
    void rewrite_request(Stream& s, const inspect::RequestRewrite& r) {
        Half& h = s.request;
        if (h.unconsumed > 0) nghttp2_session_consume(client_.session.get(), s.client_id, h.unconsumed);
        h.unconsumed = 0;
        held_ -= std::min(held_, h.available());
        std::vector<Header> headers;
        for (const Header& f : h.headers) {
            if (!f.name.starts_with(':')) continue;
            headers.push_back(f);
            if (f.name == ":method") headers.back().value = r.method;
            if (f.name == ":path") headers.back().value = r.target;
        }
        for (const auto& [k, v] : r.headers) {
            std::string name = k;
            std::transform(name.begin(), name.end(), name.begin(), [](char c) { return http::ascii_lower(c); });
            if (name == "host" || name == "connection" || name == "keep-alive" || name == "proxy-connection" ||
                name == "transfer-encoding" || name == "upgrade" || (name == "te" && !http::iequals(v, "trailers")))
                continue;
            headers.push_back({std::move(name), v});
        }
        if (!r.body.empty()) headers.push_back({"content-length", std::to_string(r.body.size())});
        h.headers = std::move(headers);
        h.trailers.clear();
        const auto* body = reinterpret_cast<const std::uint8_t*>(r.body.data());
        h.pending.assign(body, body + r.body.size());
        h.offset = 0;
        held_ += h.available();
        s.method = r.method;
        s.target = r.target;
        s.path = inspect::loggable_path(r.target);
        ++p_.metrics.rewritten;
    }

    // The head goes to the other session; the body follows from `pending` as the other
    // side's window allows.
    void release(Stream& s, Direction d) {
        Half& h = half(s, d);
        if (h.head_sent || h.dropped) return;
        held_ -= std::min(held_, h.available());
        h.holding = false;
        const bool bodyless = h.end_received && h.verdict_ok && h.available() == 0 && h.trailers.empty();
        nghttp2_data_provider provider{};
        provider.source.ptr = &s;
        provider.read_callback = read_body;
        const std::vector<nghttp2_nv> nv = to_nv(h.headers);
        if (d == Direction::request) {
            if (upstream_.over || upstream_.broken || upstream_goaway_) {
                // The upstream takes no new streams: the client may retry on a new connection.
                reset_client(s, NGHTTP2_REFUSED_STREAM);
                h.dropped = true;
                return;
            }
            const std::int32_t id = nghttp2_submit_request(upstream_.session.get(), nullptr, nv.data(), nv.size(),
                                                           bodyless ? nullptr : &provider, &s);
            if (id < 0) {
                reset_client(s, NGHTTP2_REFUSED_STREAM);
                h.dropped = true;
                return;
            }
            s.upstream_id = id;
        } else {
            if (nghttp2_submit_response(client_.session.get(), s.client_id, nv.data(), nv.size(),
                                        bodyless ? nullptr : &provider) != 0) {
                reset_upstream(s);
                return;
            }
        }
        h.head_sent = true;
        h.headers.clear();
        h.headers.shrink_to_fit();
        signal_both();
    }

    void resume(Stream& s, Direction d) {
        Half& h = half(s, d);
        if (!h.deferred) return;
        h.deferred = false;
        if (d == Direction::request) nghttp2_session_resume_data(upstream_.session.get(), s.upstream_id);
        else nghttp2_session_resume_data(client_.session.get(), s.client_id);
    }

    // nghttp2 asks for the next body bytes of a released message.
    ssize_t provide(Stream& s, Direction d, std::int32_t stream_id, std::uint8_t* buf, std::size_t length,
                    std::uint32_t* flags) {
        Half& h = half(s, d);
        const std::size_t n = std::min(length, h.available());
        if (n > 0) {
            std::memcpy(buf, h.pending.data() + h.offset, n);
            h.offset += n;
            if (!h.synthetic) {
                // What moved on is returned to the sender's window, unless the engine lags
                // behind (then on_engine_ready returns it).
                Peer& from = d == Direction::request ? client_ : upstream_;
                if (!engine_backlogged(h)) {
                    const std::size_t give = std::min(n, h.unconsumed);
                    h.unconsumed -= give;
                    nghttp2_session_consume(from.session.get(), d == Direction::request ? s.client_id : s.upstream_id,
                                            give);
                }
                (d == Direction::request ? p_.bytes_client_to_upstream : p_.bytes_upstream_to_client) += n;
                p_.activity();
                signal(from);
            }
            if (h.offset == h.pending.size()) {
                h.pending.clear();
                h.offset = 0;
            } else if (h.offset >= 64 * 1024) {
                h.pending.erase(h.pending.begin(), h.pending.begin() + static_cast<std::ptrdiff_t>(h.offset));
                h.offset = 0;
            }
        }
        if (h.available() == 0) {
            if (h.end_received && h.verdict_ok) {
                *flags |= NGHTTP2_DATA_FLAG_EOF;
                if (!h.trailers.empty()) {
                    *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
                    const std::vector<nghttp2_nv> nv = to_nv(h.trailers);
                    Peer& to = d == Direction::request ? upstream_ : client_;
                    nghttp2_submit_trailer(to.session.get(), stream_id, nv.data(), nv.size());
                }
                h.pending.shrink_to_fit();
                return static_cast<ssize_t>(n);
            }
            if (n == 0) {
                h.deferred = true;
                return NGHTTP2_ERR_DEFERRED;
            }
        }
        return static_cast<ssize_t>(n);
    }

    void forward_interim(Stream& s) {
        Half& h = s.response;
        const std::vector<nghttp2_nv> nv = to_nv(h.headers);
        nghttp2_submit_headers(client_.session.get(), NGHTTP2_FLAG_NONE, s.client_id, nullptr, nv.data(), nv.size(),
                               nullptr);
        h.headers.clear();
        h.header_bytes = 0;
    }

    void block(Stream& s, Direction d, const Verdict& v) {
        Half& h = half(s, d);
        ++blocked_;
        p_.metrics.count_block(v.rule);
        if (outcome_.reason == Reason::none) {
            outcome_.reason = Reason::inspection;
            outcome_.rule = v.rule;
            outcome_.detail = describe(s, d) + " matched rule " + v.rule + (v.note.empty() ? "" : " (" + v.note + ")");
        }
        // Nothing held of it moves on; its window goes back to the sender.
        Peer& from = d == Direction::request ? client_ : upstream_;
        const std::int32_t from_id = d == Direction::request ? s.client_id : s.upstream_id;
        if (h.unconsumed > 0) nghttp2_session_consume(from.session.get(), from_id, h.unconsumed);
        if (!h.head_sent) held_ -= std::min(held_, h.available());
        h.unconsumed = 0;
        h.pending.clear();
        h.pending.shrink_to_fit();
        h.offset = 0;
        h.inspection.reset();
        h.dropped = true;
        const bool started_to_client = s.response.head_sent;
        reset_upstream(s);
        if (!started_to_client) {
            send_page(s, inspect::block_page_for(p_.host, v, d == Direction::request));
        } else {
            if (d == Direction::response) outcome_.detail += "; stream reset, the response had started";
            reset_client(s, NGHTTP2_INTERNAL_ERROR);
        }
        signal_both();
    }

    // The node's page is the stream's response (its own response never reached the client).
    void send_page(Stream& s, const http::Page& page) {
        Half& h = s.response;
        if (h.unconsumed > 0 && s.upstream_id >= 0)
            nghttp2_session_consume(upstream_.session.get(), s.upstream_id, h.unconsumed);
        if (!h.head_sent) held_ -= std::min(held_, h.available());
        h = Half{};
        h.synthetic = true;
        h.started = h.end_received = h.verdict_ok = h.head_sent = true;
        h.pending.assign(page.body.begin(), page.body.end());
        std::vector<Header> headers{{":status", std::to_string(page.status)}};
        for (const auto& [name, value] : page.headers) headers.push_back({name, value});
        headers.push_back({"content-length", std::to_string(page.body.size())});
        const std::vector<nghttp2_nv> nv = to_nv(headers);
        nghttp2_data_provider provider{};
        provider.source.ptr = &s;
        provider.read_callback = read_body;
        if (nghttp2_submit_response(client_.session.get(), s.client_id, nv.data(), nv.size(), &provider) != 0)
            reset_client(s, NGHTTP2_INTERNAL_ERROR);
    }

    void count_node_reset(Stream& s) {
        if (s.reset_by_node) return;
        s.reset_by_node = true;
        ++resets_node_;
        ++p_.metrics.h2_resets_node;
    }

    void reset_client(Stream& s, std::uint32_t code) {
        if (s.client_closed || s.reset_by_node) return;
        count_node_reset(s);
        nghttp2_submit_rst_stream(client_.session.get(), NGHTTP2_FLAG_NONE, s.client_id, code);
    }

    void reset_upstream(Stream& s) {
        if (s.upstream_ignored) return;
        s.upstream_ignored = true;
        Half& h = s.response;
        if (s.upstream_id >= 0 && !s.upstream_closed && !upstream_.broken) {
            if (h.unconsumed > 0 && !h.synthetic) nghttp2_session_consume(upstream_.session.get(), s.upstream_id, h.unconsumed);
            if (!h.synthetic) h.unconsumed = 0;
            nghttp2_submit_rst_stream(upstream_.session.get(), NGHTTP2_FLAG_NONE, s.upstream_id, NGHTTP2_CANCEL);
        }
    }

    void client_stream_closed(Stream& s, std::uint32_t error_code) {
        s.client_closed = true;
        if (error_code != NGHTTP2_NO_ERROR && !s.reset_by_node) {
            ++resets_client_;
            ++p_.metrics.h2_resets_client;
        }
        // Whatever is left of the request goes back to the client's connection window.
        if (s.request.unconsumed > 0) nghttp2_session_consume_connection(client_.session.get(), s.request.unconsumed);
        if (!s.request.head_sent) held_ -= std::min(held_, s.request.available());
        if (!s.response.head_sent) held_ -= std::min(held_, s.response.available());
        s.request.unconsumed = 0;
        // The upstream stream is no longer wanted unless its response is all in.
        if (s.upstream_id >= 0 && !s.upstream_closed && !s.response.end_received) reset_upstream(s);
        forget_if_done(s);
    }

    // A request whose rest has nowhere to go (the upstream stream closed, or it was blocked)
    // while its response is complete: RST_STREAM NO_ERROR tells the client to stop sending
    // (RFC 9113 8.1) instead of waiting on a window that never opens.
    void stop_orphaned_request(Stream& s) {
        if (s.client_closed || s.reset_by_node || s.request.end_received || !s.response_sent) return;
        if (!s.request.dropped && !s.upstream_closed) return;
        s.reset_by_node = true;  // an ordinary end, not counted as a reset
        nghttp2_submit_rst_stream(client_.session.get(), NGHTTP2_FLAG_NONE, s.client_id, NGHTTP2_NO_ERROR);
    }

    void upstream_stream_closed(Stream& s, std::uint32_t error_code) {
        s.upstream_closed = true;
        if (s.request.head_sent && !s.request.dropped && (!s.request.end_received || s.request.available() > 0)) {
            // The upstream wants no more of the request: what comes is dropped.
            if (s.request.unconsumed > 0) nghttp2_session_consume(client_.session.get(), s.client_id, s.request.unconsumed);
            s.request.unconsumed = 0;
            s.request.pending.clear();
            s.request.offset = 0;
            s.request.dropped = true;
        }
        if (s.response.unconsumed > 0 && !s.response.synthetic) {
            nghttp2_session_consume_connection(upstream_.session.get(), s.response.unconsumed);
            s.response.unconsumed = 0;
        }
        if (!s.upstream_ignored && !s.response.end_received) {
            // The server reset the stream (or refused it): so is the client's.
            ++resets_upstream_;
            ++p_.metrics.h2_resets_upstream;
            if (!s.client_closed) {
                s.reset_by_node = true;
                nghttp2_submit_rst_stream(client_.session.get(), NGHTTP2_FLAG_NONE, s.client_id,
                                          error_code == NGHTTP2_NO_ERROR ? std::uint32_t{NGHTTP2_INTERNAL_ERROR} : error_code);
            }
        }
        stop_orphaned_request(s);
        forget_if_done(s);
    }

    void forget_if_done(Stream& s) {
        if (!s.client_closed || (s.upstream_id >= 0 && !s.upstream_closed)) return;
        streams_.erase(s.client_id);
    }

    // The upstream connection is ending: streams it will not answer are reset, and the
    // client opens no more here (GOAWAY); those already answered finish.
    void upstream_ended(const std::string&) {
        if (upstream_ending_) return;
        upstream_ending_ = true;
        if (upstream_.frames == 0 && outcome_.reason == Reason::none && !client_.broken && !client_.over) {
            // It selected h2 by ALPN but never spoke it (not even its SETTINGS).
            outcome_.reason = Reason::malformed_http2;
            outcome_.detail = "server HTTP/2: the server selected h2 but ended without speaking it (no SETTINGS)";
        }
        std::vector<Stream*> open;
        for (auto& [id, s] : streams_) open.push_back(s.get());
        for (Stream* s : open) {
            if (s->upstream_id >= 0 && !s->upstream_closed && !s->response.end_received && !s->upstream_ignored) {
                s->upstream_ignored = true;
                ++resets_upstream_;
                ++p_.metrics.h2_resets_upstream;
                if (!s->response.synthetic) reset_client(*s, NGHTTP2_INTERNAL_ERROR);
            }
            if (s->upstream_id >= 0 && upstream_.broken) s->upstream_closed = true;
        }
        if (!client_.broken && !client_.over)
            nghttp2_submit_goaway(client_.session.get(), NGHTTP2_FLAG_NONE,
                                  nghttp2_session_get_last_proc_stream_id(client_.session.get()), NGHTTP2_NO_ERROR,
                                  nullptr, 0);
        for (Stream* s : open)
            if (s->client_closed && (s->upstream_id < 0 || s->upstream_closed)) streams_.erase(s->client_id);
    }

    inspect::RelayParams p_;
    asio::any_io_executor ex_;
    std::int32_t stream_window_ = 0, connection_window_ = 0;
    std::size_t hold_budget_ = 0;
    std::size_t held_ = 0;  // body bytes held (not yet released) over all streams
    std::map<std::int32_t, std::unique_ptr<Stream>> streams_;  // by client stream id
    std::shared_ptr<EngineWake> engine_wake_;
    std::function<void()> wake_fn_;  // handed to Inspection::ready
    std::vector<std::shared_ptr<VerdictSlot>> slots_;          // verdicts still awaited
    bool upstream_goaway_ = false;
    bool upstream_ending_ = false;
    bool abuse_noted_ = false;
    std::uint64_t client_rst_frames_ = 0;
    std::uint64_t streams_seen_ = 0, blocked_ = 0, resets_client_ = 0, resets_upstream_ = 0, resets_node_ = 0;
    std::string note_;
    inspect::RelayOutcome outcome_;
    // Last: the sessions go before the streams their callbacks point at.
    Peer client_, upstream_;
};

}  // namespace

awaitable<inspect::RelayOutcome> h2_relay(tls::ByteStream& client, tls::ByteStream& upstream,
                                          const inspect::RelayParams& params) {
    auto relay = std::make_unique<Relay>(client, upstream, params);
    inspect::RelayOutcome out = co_await relay->run();
    co_return out;
}

}  // namespace proxy::h2
