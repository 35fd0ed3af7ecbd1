#pragma once
// The inspection contract: an engine is handed every decrypted HTTP/1.1 message, every
// HTTP/2 stream's request and response, and every
// WebSocket message (text or binary, reassembled from its fragments), one Inspection per message, fed its decoded body (chunk framing removed, Content-Encoding
// gzip/deflate/br undone) as it streams, and gives a verdict — at any
// point while the body streams, or at the end, possibly later (asynchronously: an external
// engine over ICAP answers from its own connection). The relay that drives it decides
// what the client sees (inspect/inspecting_relay.hpp).

#include "http/page.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace proxy::inspect {

enum class Direction { request, response };  // WebSocket: request = from the client

std::string_view name(Direction d);

// What carries the message: an HTTP/1.1 request or response, an HTTP/2 stream's request or
// response (target = :path, method = :method; h2/), or a WebSocket message after
// an upgrade (its body is the message payload, decoded when permessage-deflate compressed
// it; content_type is "text/plain; charset=utf-8" for text and "application/octet-stream"
// for binary; method and target are the upgrade request's).
// An e-mail part (mail/): each leaf part of a message relayed over SMTP, transfer-decoding
// undone (direction request, method "SMTP", target the part's file name or "", host the
// mail server's name, content_type the part's media type).
enum class Carrier { http1, http2, websocket, mail };

// What is known about a message when its head has been read. Views are valid only for
// the duration of Inspector::begin().
struct MessageInfo {
    Direction direction = Direction::response;
    Carrier carrier = Carrier::http1;
    std::string_view host;                        // the intercepted server name
    std::string_view method;                      // of the request (for responses: the request answered)
    std::string_view target;                      // request target as sent
    int status = 0;                               // responses only
    std::optional<std::uint64_t> content_length;  // when framed by Content-Length (encoded size)
    std::string_view content_type;
    // The head's fields as received (HTTP/2: without pseudo-headers), for an engine that
    // wants them (ICAP passes them on). Empty for WebSocket messages.
    std::span<const std::pair<std::string_view, std::string_view>> headers;
    // Known from the head: no body follows (an HTTP/1.1 request without Content-Length or
    // chunking, a response to HEAD, a 204 or 304, HTTP/2 HEADERS that end the stream).
    bool no_body = false;
};

// A request an engine modified (an ICAP REQMOD answer, e.g. a DLP engine that redacts):
// what goes upstream instead of the client's request. The target is in the form the
// client sent it (origin-form on an intercepted connection); the fields hold no framing
// (Content-Length, Transfer-Encoding) and no Content-Encoding, as the body is decoded.
// The relay frames the body itself.
struct RequestRewrite {
    std::string method, target;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
};

struct Verdict {
    enum class Kind {
        undecided,  // keep feeding (body) / not used as a final verdict
        allow,      // pass; no more body needs to be seen
        block,      // refuse; `rule` names why
        // The engine could not decide: it erred, timed out or cannot be reached. `rule` names
        // the engine, `note` what failed. Never what the relay acts on directly: an
        // EngineChain (inspect/engine_chain.hpp) turns it into block or allow by the engine's
        // on_error policy, and the relay treats one that reaches it as a block (fail closed).
        failed,
    };
    Kind kind = Kind::undecided;
    std::string rule;  // the rule that blocked (stable name for logs, metrics, the block page)
    std::string note;  // e.g. "scan limit reached" on an allow; never payload
    // A block only: the engine's own page for the client (an ICAP service's answer), which
    // a relay delivers instead of the node's block page while that is still possible.
    std::shared_ptr<const http::Page> page;
    // An allow only: the engine modified the request; the relay sends this upstream in its
    // place, or blocks (note: why) when the client's request already started to go out.
    // Only a final verdict (Inspection::finish) carries one; `rule` then names the engine
    // that modified it (for the block when the relay must refuse it).
    std::shared_ptr<const RequestRewrite> rewrite;
    // An allow only: the body went past a scan limit (max_scan_bytes), counted in metrics.
    bool over_limit = false;

    static Verdict undecided() { return {}; }
    static Verdict allow(std::string note = {}) { return make(Kind::allow, {}, std::move(note)); }
    static Verdict block(std::string rule, std::string note = {}) {
        return make(Kind::block, std::move(rule), std::move(note));
    }
    static Verdict failed(std::string engine, std::string why) {
        return make(Kind::failed, std::move(engine), std::move(why));
    }
    static Verdict make(Kind kind, std::string rule, std::string note) {
        Verdict v;
        v.kind = kind;
        v.rule = std::move(rule);
        v.note = std::move(note);
        return v;
    }
    bool blocked() const { return kind == Kind::block; }
    bool decided() const { return kind != Kind::undecided; }
};

// One message under inspection. Used from one thread (the connection's); not shared.
class Inspection {
public:
    virtual ~Inspection() = default;
    // The next decoded body bytes (chunk framing removed), in order. Returns block as soon
    // as the engine knows, allow if it needs no more of this body, undecided otherwise.
    virtual Verdict body(std::span<const std::uint8_t> bytes) = 0;
    // End of the message: the final verdict (allow, block or failed), delivered by calling
    // `done` exactly once — inline or later, from any thread (the relay re-posts it to its
    // own). finish() itself may be called from another thread than body() was (an engine
    // chain calls the next engine's from the thread the previous engine answered on).
    using Completion = std::function<void(Verdict)>;
    virtual void finish(Completion done) = 0;
    // The relay waited inspection.verdict_timeout_ms for `done` in vain: the verdict to use
    // instead (a late `done` is then ignored). An engine chain answers for the engine it
    // still waits on, by that engine's policy.
    virtual Verdict timed_out() { return Verdict::failed("inspection", "no verdict in time"); }
    // Back-pressure from an engine slower than the transfer (an ICAP service that has a lot
    // of this body still to take): false asks the relay to read no more of this message
    // until `wake` is called (once, from any thread), then to ask again. The rule set is
    // always ready.
    virtual bool ready(const std::function<void()>& wake) {
        (void)wake;
        return true;
    }
};

// The rule a block carries when an engine failed and its policy is to block (fail closed):
// the block page says the inspection engine is unavailable.
inline constexpr std::string_view kEngineUnavailableRule = "engine_unavailable";
// The rule when two engines each modified the same request (inspect/engine_chain.hpp).
inline constexpr std::string_view kRewriteConflictRule = "rewrite_conflict";

class Inspector {
public:
    virtual ~Inspector() = default;
    // Called for each message head; thread-safe (all workers share one Inspector). An
    // engine in an EngineChain may return nullptr: it has nothing to do with this message
    // (an ICAP service for responses only, given a request); the chain skips it.
    virtual std::unique_ptr<Inspection> begin(const MessageInfo& info) const = 0;
};

}  // namespace proxy::inspect
