#include "inspect/icap/icap_service.hpp"

#include "http/message_parser.hpp"
#include "http/text.hpp"
#include "inspect/icap/icap_protocol.hpp"
#include "ossl/handles.hpp"
#include "tls/plain_stream.hpp"
#include "tls/tls_stream.hpp"

#include <asio/co_spawn.hpp>
#include <asio/connect.hpp>
#include <asio/detached.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <zlib.h>

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <future>
#include <mutex>
#include <optional>
#include <sstream>

// GCC 12 reports a false -Wmismatched-new-delete on coroutine frames (Asio's frame
// operator new/delete pair is matched), as in inspect/inspecting_relay.cpp.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace proxy::icap {

using asio::awaitable;
using asio::use_awaitable;
using Clock = std::chrono::steady_clock;
using inspect::Direction;
using inspect::Inspection;
using inspect::MessageInfo;
using inspect::Verdict;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr std::size_t kHeadLimit = 64 * 1024;      // an ICAP answer's head, an encapsulated HTTP head
constexpr std::size_t kMaxQueued = 8 << 20;        // body bytes the engine may lag behind the relay
// Back-pressure: at kHighWater bytes waiting for the engine the relay is asked to stop
// reading (Inspection::ready), and woken when the sender has taken them below kLowWater.
constexpr std::size_t kHighWater = 1 << 20;
constexpr std::size_t kLowWater = 256 * 1024;
constexpr std::size_t kMaxPageBytes = 1 << 20;     // an engine's page the node passes on
constexpr std::size_t kReadChunk = 64 * 1024;
constexpr auto kPoolIdleLimit = std::chrono::seconds(30);  // a pooled connection unused this long is closed
constexpr auto kPoolCheckAfter = std::chrono::seconds(1);  // idle longer: checked before reuse
// A body announced this small (Content-Length) is sent whole, without a preview, once the
// relay has it all (it holds that much anyway): one round trip instead of two.
constexpr std::uint64_t kWholeBodyMax = 64 * 1024;
constexpr auto kDefaultRecheck = std::chrono::seconds(300);  // OPTIONS again when the service gives no TTL
constexpr auto kMinRecheck = std::chrono::seconds(5);

// Header field values built from what the relay knows: no control characters.
std::string clean(std::string_view v, std::size_t max = 2048) {
    std::string out;
    for (char c : v.substr(0, max))
        if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) out += c;
    return out;
}

// The threat an engine names: X-Infection-Found ("Type=0; Resolution=2; Threat=NAME;"),
// X-Virus-ID, or X-Violations-Found (a count line, then per violation a file name, the
// threat, and two codes).
std::string threat_of(const Head& h) {
    if (auto v = h.header("X-Infection-Found")) {
        const std::string_view s = *v;
        if (const auto at = s.find("Threat="); at != std::string_view::npos) {
            auto name = s.substr(at + 7);
            name = name.substr(0, name.find(';'));
            return clean(http::trim_ows(name), 200);
        }
        return clean(s, 200);
    }
    if (auto v = h.header("X-Virus-ID")) return clean(*v, 200);
    if (auto v = h.header("X-Violations-Found")) return "violations: " + clean(*v, 200);
    return {};
}

bool framing_header(std::string_view name) {
    for (std::string_view h : {"content-length", "transfer-encoding", "connection", "keep-alive", "proxy-connection",
                               "te", "trailer", "upgrade"})
        if (http::iequals(name, h)) return true;
    return false;
}

// A socket that is idle in the pool must have nothing to say: data or an end means the
// service closed it (or broke the protocol) meanwhile.
bool still_open(asio::ip::tcp::socket& s) {
    char byte;
    const ssize_t n = ::recv(s.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

}  // namespace

// One connection to the service, plain or TLS, with deadlines for its writes and reads:
// when one passes, the socket is shut down, which ends the pending operation.
struct Conn : std::enable_shared_from_this<Conn> {
    explicit Conn(asio::io_context& io) : socket(io), timers{asio::steady_timer(io), asio::steady_timer(io), asio::steady_timer(io)} {}
    ~Conn() {
        for (auto& t : timers) t.cancel();
    }
    enum Slot { write_slot, read_slot, total_slot };

    void arm(Slot slot, Clock::duration d, const char* what) {
        const unsigned gen = ++gens[slot];
        timers[slot].expires_after(d);
        timers[slot].async_wait([weak = weak_from_this(), slot, gen, what](const asio::error_code& ec) {
            auto self = weak.lock();
            if (ec || !self || self->gens[slot] != gen) return;
            if (self->expired.empty()) self->expired = what;
            tls::abort_socket(self->socket);
        });
    }
    void disarm(Slot slot) {
        ++gens[slot];
        timers[slot].cancel();
    }

    asio::ip::tcp::socket socket;
    std::unique_ptr<tls::ByteStream> stream;
    std::string in;  // received and not yet used
    Clock::time_point idle_since{};
    bool reused = false;
    std::string expired;  // which deadline passed
    std::array<asio::steady_timer, 3> timers;
    std::array<unsigned, 3> gens{};
};

// One message's transaction, shared by the relay's Inspection (body bytes in) and the
// coroutine on the ICAP thread (bytes out to the engine, the answer back).
struct Txn {
    explicit Txn(asio::io_context& io) : wake(io) {}

    std::mutex mu;  // the fields up to `wake`
    std::string pending;  // body bytes from the relay not yet taken by the sender
    bool ended = false;   // finish() was called: no more body
    bool abandoned = false;  // the relay dropped the message, or it went past a limit
    bool waiting = false;    // the sender waits on `wake`...
    std::size_t want = 0;    // ...for this many pending bytes (or the end)
    std::optional<Verdict> verdict;
    Inspection::Completion done;
    std::function<void()> ready_wake;  // the relay waits for the backlog to shrink
    std::uint64_t given = 0;  // body bytes the relay gave
    Clock::time_point ended_at{};
    asio::steady_timer wake;

    // Fixed at begin().
    bool request = false;        // REQMOD (else RESPMOD)
    std::string icap_head;       // the ICAP request head and the encapsulated HTTP heads
    std::optional<std::size_t> preview;
    bool whole = false;          // a small body: sent whole once it has ended
    int status = 0;              // RESPMOD: the response's status
    // REQMOD: the HTTP request head as sent (to tell a modified request from an echo), the
    // scheme and authority of its URL, and whether the client sent the target in origin-form.
    std::optional<http::MessageHead> sent_request;
    std::string url_prefix;
    bool origin_form = true;
    // The ICAP thread's own.
    uLong crc = crc32(0, nullptr, 0);  // of the body as sent, to tell an unmodified echo
    std::uint64_t sent = 0;
    bool all_sent = false;
};

namespace {

void notify(Txn& t, asio::io_context& io, const std::shared_ptr<Txn>& keep) {
    // Called with t.mu held.
    if (!t.waiting || (t.pending.size() < t.want && !t.ended && !t.abandoned)) return;
    t.waiting = false;
    asio::post(io, [keep] { keep->wake.cancel(); });
}

// Delivers the transaction's verdict once: to the relay's completion if it waits, else
// kept for its next body() or finish().
void settle(Txn& t, Verdict v) {
    Inspection::Completion done;
    std::function<void()> wake;
    {
        std::lock_guard lock(t.mu);
        if (t.verdict) return;
        t.verdict = v;
        done = std::move(t.done);
        wake = std::exchange(t.ready_wake, nullptr);
    }
    if (wake) wake();
    if (done) done(std::move(v));
}

// An answer for a message that needs no transaction (the service is down, or does not
// offer the method).
class FixedInspection final : public Inspection {
public:
    explicit FixedInspection(Verdict v) : v_(std::move(v)) {}
    Verdict body(std::span<const std::uint8_t>) override { return v_; }
    void finish(Completion done) override { done(v_); }
    Verdict timed_out() override { return v_; }

private:
    Verdict v_;
};

}  // namespace

class Service final : public inspect::Inspector, public std::enable_shared_from_this<Service> {
public:
    Service(const IcapServiceSection& cfg, const InspectionSection& inspection, asio::io_context& io, ConnectionLog& log)
        : cfg_(cfg), url_(parse_service_url(cfg.url)), rule_("icap." + cfg.name), io_(io), log_(log),
          max_body_(inspection.max_scan_bytes), over_limit_block_(inspection.over_limit_block), recheck_(io) {
        if (url_.tls) {
            tls_ctx_.reset(SSL_CTX_new(TLS_client_method()));
            if (!tls_ctx_) throw std::runtime_error("icap." + cfg.name + ": cannot make a TLS context");
            SSL_CTX_set_min_proto_version(tls_ctx_.get(), TLS1_2_VERSION);
            SSL_CTX_set_verify(tls_ctx_.get(), SSL_VERIFY_PEER, nullptr);
            if (SSL_CTX_load_verify_locations(tls_ctx_.get(), cfg.tls_ca_file.c_str(), nullptr) != 1)
                throw std::runtime_error("icap." + cfg.name + ".tls_ca_file: " + cfg.tls_ca_file.string() +
                                         " holds no CA certificate OpenSSL can read");
        }
    }

    const std::string& rule() const { return rule_; }
    const IcapServiceSection& config() const { return cfg_; }

    std::unique_ptr<Inspection> begin(const MessageInfo& info) const override {
        const bool request = info.direction == Direction::request;
        if (request ? !cfg_.reqmod : !cfg_.respmod) return nullptr;
        if (info.no_body && !cfg_.send_bodiless) return nullptr;
        std::shared_ptr<const Options> opts;
        std::string down;
        {
            std::lock_guard lock(mu_);
            opts = options_;
            if (!up_) down = last_error_.empty() ? "no OPTIONS answer yet" : last_error_;
        }
        const char* method = request ? "REQMOD" : "RESPMOD";
        if (!down.empty()) {
            ++failed_;
            return std::make_unique<FixedInspection>(Verdict::failed(rule_, "service down: " + down));
        }
        if (!opts->supports(method)) {
            ++failed_;
            return std::make_unique<FixedInspection>(
                Verdict::failed(rule_, std::string("the service does not offer ") + method + " (its OPTIONS Methods)"));
        }
        auto t = std::make_shared<Txn>(io_);
        t->request = request;
        t->status = info.carrier == inspect::Carrier::websocket || info.carrier == inspect::Carrier::mail || info.status < 100
                        ? 200
                        : info.status;
        switch (opts->transfer_for(target_extension(info.target))) {
        case Options::Transfer::ignore: return nullptr;  // by the service's Transfer-Ignore
        case Options::Transfer::complete: break;
        case Options::Transfer::preview: t->preview = opts->preview; break;
        }
        if (info.content_length && *info.content_length <= kWholeBodyMax) {
            t->whole = true;
            t->preview.reset();
        }
        t->icap_head = transaction_head(info, method, *opts, t->preview.has_value(), *t);
        auto self = std::const_pointer_cast<Service>(shared_from_this());
        asio::co_spawn(io_, run(self, t), asio::detached);
        return std::make_unique<IcapInspection>(self, t);
    }

    // OPTIONS now, then by Options-TTL (while up) or retry_interval (while down). `first`
    // is set when the first attempt has ended.
    void start(std::shared_ptr<std::promise<void>> first) {
        asio::co_spawn(io_, options_loop(shared_from_this(), std::move(first)), asio::detached);
    }
    void stop() {
        asio::post(io_, [self = shared_from_this()] {
            self->stopping_ = true;
            self->recheck_.cancel();
            for (auto& c : self->idle_) tls::abort_socket(c->socket);
            self->idle_.clear();
            for (auto& w : self->waiters_) w->cancel();
        });
    }

    ServiceStatus status() const {
        ServiceStatus s;
        s.name = cfg_.name;
        s.url = cfg_.url;
        {
            std::lock_guard lock(mu_);
            s.up = up_;
            s.istag = options_ ? options_->istag : "";
            s.last_error = last_error_;
            s.max_connections = limit_;
        }
        s.open_connections = open_.load();
        s.allowed = allowed_.load();
        s.allowed_204 = allowed_204_.load();
        s.rewritten = rewritten_.load();
        s.blocked = blocked_.load();
        s.failed = failed_.load();
        s.errors_connect = errors_connect_.load();
        s.errors_timeout = errors_timeout_.load();
        s.errors_protocol = errors_protocol_.load();
        s.errors_status = errors_status_.load();
        s.latency_us_sum = latency_us_.load();
        s.latency_count = latency_n_.load();
        return s;
    }

private:
    class IcapInspection final : public Inspection {
    public:
        IcapInspection(std::shared_ptr<Service> svc, std::shared_ptr<Txn> t) : svc_(std::move(svc)), t_(std::move(t)) {}
        ~IcapInspection() override {
            std::lock_guard lock(t_->mu);
            t_->abandoned = true;
            notify(*t_, svc_->io_, t_);
        }

        Verdict body(std::span<const std::uint8_t> bytes) override {
            std::lock_guard lock(t_->mu);
            if (t_->verdict) {
                // A modified request is a final verdict (finish() gives it): until then the
                // relay keeps holding the message.
                if (t_->verdict->rewrite) return Verdict::undecided();
                return t_->verdict->kind == Verdict::Kind::allow ? Verdict::allow() : *t_->verdict;
            }
            if (t_->given + bytes.size() > svc_->max_body_) {
                // Past inspection.max_scan_bytes, like the rule set: over_limit decides.
                t_->abandoned = true;
                notify(*t_, svc_->io_, t_);
                t_->verdict = svc_->over_limit_block_ ? Verdict::block("scan_limit", svc_->rule_ + ": body longer than max_scan_bytes")
                                                      : Verdict::allow();
                return *t_->verdict;
            }
            if (t_->pending.size() + bytes.size() > kMaxQueued) {
                t_->abandoned = true;
                notify(*t_, svc_->io_, t_);
                ++svc_->failed_;
                t_->verdict = Verdict::failed(svc_->rule_, "the engine did not keep up (8 MiB of body waiting to be sent to it)");
                return *t_->verdict;
            }
            t_->pending.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
            t_->given += bytes.size();
            notify(*t_, svc_->io_, t_);
            return Verdict::undecided();
        }

        void finish(Completion done) override {
            std::unique_lock lock(t_->mu);
            t_->ended = true;
            t_->ended_at = Clock::now();
            if (t_->verdict) {
                Verdict v = *t_->verdict;
                lock.unlock();
                done(std::move(v));
                return;
            }
            t_->done = std::move(done);
            notify(*t_, svc_->io_, t_);
        }

        Verdict timed_out() override {
            return Verdict::failed(svc_->rule_, "no answer within inspection.verdict_timeout_ms");
        }

        bool ready(const std::function<void()>& wake) override {
            std::lock_guard lock(t_->mu);
            if (t_->verdict || t_->abandoned || t_->pending.size() < kHighWater) return true;
            t_->ready_wake = wake;
            return false;
        }

    private:
        std::shared_ptr<Service> svc_;
        std::shared_ptr<Txn> t_;
    };

    // The ICAP request head with the HTTP heads the node knows: the message's own fields,
    // except that it relays the decoded body, so no Content-Length, Transfer-Encoding or
    // Content-Encoding is claimed (chunked encapsulation frames it).
    std::string transaction_head(const MessageInfo& info, const char* method, const Options& opts, bool preview,
                                 Txn& t) const {
        const bool request = info.direction == Direction::request;
        // A WebSocket message or an e-mail part is framed as a synthetic HTTP message (no
        // request of its own to rewrite).
        const bool websocket = info.carrier == inspect::Carrier::websocket || info.carrier == inspect::Carrier::mail;
        std::string host = clean(info.host, 255);
        for (const auto& [k, v] : info.headers)
            if (http::iequals(k, "host") && !v.empty()) {
                host = clean(v, 255);  // with its port, as the client wrote it
                break;
            }
        std::string target = clean(info.target);
        if (target.empty() || target == "*") target = "/";
        t.origin_form = target.front() == '/';
        const std::string url = t.origin_form ? "https://" + host + target : target;
        const auto authority_end = url.find('/', url.find("://") == std::string::npos ? 0 : url.find("://") + 3);
        t.url_prefix = url.substr(0, authority_end);
        std::string req_method = clean(info.method, 32);
        if (websocket) req_method = request ? "POST" : "GET";
        if (req_method.empty()) req_method = "GET";
        auto fields = [&](std::string& out) {
            for (const auto& [k, v] : info.headers) {
                if (http::iequals(k, "host") || http::iequals(k, "content-length") || http::iequals(k, "transfer-encoding") ||
                    http::iequals(k, "content-encoding"))
                    continue;
                out += clean(k, 256) + ": " + clean(v) + "\r\n";
            }
        };
        std::string req = req_method + " " + url + " HTTP/1.1\r\nHost: " + host + "\r\n";
        if (request) {
            fields(req);
            if (info.headers.empty() && !info.content_type.empty())
                req += "Content-Type: " + clean(info.content_type, 256) + "\r\n";
        }
        req += "\r\n";
        if (request && !websocket) {
            http::MessageParser parser(http::MessageParser::Kind::request, http::MessageLimits{});
            const auto step = parser.parse({reinterpret_cast<const std::uint8_t*>(req.data()), req.size()});
            if (step.event == http::MessageParser::Event::head) t.sent_request = parser.head();
        }
        std::string res;
        if (!request) {
            const int status = websocket || info.status < 100 ? 200 : info.status;
            res = "HTTP/1.1 " + std::to_string(status) + " " + (status == 200 ? "OK" : "Response") + "\r\n";
            fields(res);
            if (info.headers.empty() && !info.content_type.empty())
                res += "Content-Type: " + clean(info.content_type, 256) + "\r\n";
            res += "\r\n";
        }
        std::string head = std::string(method) + " " + url_.text + " ICAP/1.0\r\nHost: " + url_.authority() + "\r\n";
        if (opts.allow_204) head += "Allow: 204\r\n";
        if (preview) head += "Preview: " + std::to_string(*opts.preview) + "\r\n";
        head += "User-Agent: proxy-node\r\n";
        if (request)
            head += "Encapsulated: req-hdr=0, req-body=" + std::to_string(req.size()) + "\r\n";
        else
            head += "Encapsulated: req-hdr=0, res-hdr=" + std::to_string(req.size()) +
                    ", res-body=" + std::to_string(req.size() + res.size()) + "\r\n";
        head += "\r\n";
        head += req;
        head += res;
        return head;
    }

    // The engine's modified request as the relay sends it upstream, or why it cannot be.
    static bool same_head(const http::MessageHead& a, const http::MessageHead& b) {
        if (a.method != b.method || a.target != b.target || a.headers.size() != b.headers.size()) return false;
        for (std::size_t i = 0; i < a.headers.size(); ++i)
            if (!http::iequals(a.headers[i].first, b.headers[i].first) || a.headers[i].second != b.headers[i].second)
                return false;
        return true;
    }
    static std::shared_ptr<inspect::RequestRewrite> rewrite_of(const http::MessageHead& head, std::string body,
                                                               const Txn& t, std::string& why) {
        auto out = std::make_shared<inspect::RequestRewrite>();
        out->method = head.method;
        if (out->method == "CONNECT") {
            why = "the engine made the request a CONNECT";
            return nullptr;
        }
        std::string_view target = head.target;
        if (target.size() >= t.url_prefix.size() && http::iequals(target.substr(0, t.url_prefix.size()), t.url_prefix) &&
            (target.size() == t.url_prefix.size() || target[t.url_prefix.size()] == '/' || target[t.url_prefix.size()] == '?')) {
            if (t.origin_form) {
                target.remove_prefix(t.url_prefix.size());
                out->target = target.empty() || target.front() != '/' ? "/" + std::string(target) : std::string(target);
            } else {
                out->target = std::string(target);
            }
        } else if (!target.empty() && target.front() == '/') {
            out->target = t.origin_form ? std::string(target) : t.url_prefix + std::string(target);
        } else {
            why = "the engine sent the request to another server (" + clean(target.substr(0, 200)) + ")";
            return nullptr;
        }
        for (const auto& [k, v] : head.headers) {
            if (http::iequals(k, "content-length") || http::iequals(k, "transfer-encoding")) continue;
            out->headers.emplace_back(k, v);
        }
        out->body = std::move(body);
        return out;
    }

    // ---- connections -----------------------------------------------------------------

    struct Acquired {
        std::shared_ptr<Conn> conn;
        std::string error;  // when conn is null
    };

    awaitable<std::shared_ptr<Conn>> connect(std::string& error) {
        auto c = std::make_shared<Conn>(io_);
        asio::ip::tcp::resolver resolver(io_);
        asio::error_code ec;
        c->arm(Conn::write_slot, cfg_.connect_timeout, "connect_timeout_ms");
        auto endpoints = co_await resolver.async_resolve(url_.host, std::to_string(url_.port),
                                                         asio::redirect_error(use_awaitable, ec));
        if (!ec) co_await asio::async_connect(c->socket, endpoints, asio::redirect_error(use_awaitable, ec));
        if (ec) {
            c->disarm(Conn::write_slot);
            error = "cannot connect to " + url_.authority() + ": " +
                    (c->expired.empty() ? ec.message() : "no answer within " + std::string(c->expired));
            co_return nullptr;
        }
        c->socket.set_option(asio::ip::tcp::no_delay(true), ec);
        if (!url_.tls) {
            c->disarm(Conn::write_slot);
            c->stream = std::make_unique<tls::PlainStream>(c->socket);
            co_return c;
        }
        ossl::Ssl ssl(SSL_new(tls_ctx_.get()));
        if (!ssl) {
            error = "cannot make a TLS connection object";
            co_return nullptr;
        }
        SSL_set_connect_state(ssl.get());
        unsigned char ip[16];
        const bool literal = ::inet_pton(AF_INET, url_.host.c_str(), ip) == 1 || ::inet_pton(AF_INET6, url_.host.c_str(), ip) == 1;
        if (!literal) SSL_set_tlsext_host_name(ssl.get(), url_.host.c_str());
        X509_VERIFY_PARAM* param = SSL_get0_param(ssl.get());
        if (literal)
            X509_VERIFY_PARAM_set1_ip_asc(param, url_.host.c_str());
        else
            X509_VERIFY_PARAM_set1_host(param, url_.host.c_str(), url_.host.size());
        auto stream = std::make_unique<tls::TlsStream>(c->socket, std::move(ssl));
        const bool ok = co_await stream->handshake();
        c->disarm(Conn::write_slot);
        if (!ok) {
            const long verify = SSL_get_verify_result(stream->ssl());
            error = "TLS with " + url_.authority() + " failed: " +
                    (!c->expired.empty()       ? "no answer within " + std::string(c->expired)
                     : verify != X509_V_OK ? std::string("its certificate: ") + X509_verify_cert_error_string(verify)
                                           : stream->failure().text);
            co_return nullptr;
        }
        c->stream = std::move(stream);
        co_return c;
    }

    // A pooled connection, a new one, or (when min(max_connections, Max-Connections) are
    // busy) the next one released, waiting at most io_timeout.
    // (Locals of the loops live outside them: GCC 12 mishandles destructors of objects
    // declared in a loop body that suspends.)
    awaitable<Acquired> acquire() {
        const auto give_up = Clock::now() + cfg_.io_timeout;
        Acquired out;
        std::shared_ptr<asio::steady_timer> waiter;
        asio::error_code ec;
        for (;;) {
            if (stopping_) {
                out.error = "the node is stopping";
                co_return out;
            }
            while (!idle_.empty()) {
                out.conn = std::move(idle_.back());
                idle_.pop_back();
                const auto idle = Clock::now() - out.conn->idle_since;
                if (idle < kPoolIdleLimit && (idle < kPoolCheckAfter || still_open(out.conn->socket))) {
                    out.conn->reused = true;
                    co_return out;
                }
                out.conn.reset();
                --open_;
            }
            if (open_.load() < current_limit()) {
                ++open_;
                out.conn = co_await connect(out.error);
                if (!out.conn) {
                    --open_;
                    wake_waiter();
                }
                co_return out;
            }
            if (Clock::now() >= give_up) {
                out.error = "all " + std::to_string(current_limit()) + " connections to it stayed busy for io_timeout_ms";
                co_return out;
            }
            waiter = std::make_shared<asio::steady_timer>(io_, give_up);
            waiters_.push_back(waiter);
            co_await waiter->async_wait(asio::redirect_error(use_awaitable, ec));
            std::erase(waiters_, waiter);
            waiter.reset();
        }
    }

    unsigned current_limit() const {
        std::lock_guard lock(mu_);
        return limit_;
    }

    void wake_waiter() {
        if (!waiters_.empty()) waiters_.front()->cancel();
    }

    void release(const std::shared_ptr<Conn>& c, bool reusable) {
        if (reusable && !stopping_ && c->in.empty() && c->expired.empty()) {
            c->idle_since = Clock::now();
            idle_.push_back(c);
        } else {
            tls::abort_socket(c->socket);
            --open_;
        }
        wake_waiter();
    }

    // ---- reading -----------------------------------------------------------------------

    // More bytes into c.in; false at the end or on an error (or a deadline). The engine
    // owes bytes, so io_timeout applies, unless `t` is still being sent (the engine may
    // wait for the rest of the body before it says anything).
    awaitable<bool> read_more(Conn& c, const Txn* t) {
        tls::IoStatus st = tls::IoStatus::ok;
        const bool timed = t == nullptr || t->all_sent;
        const std::size_t had = c.in.size();
        c.in.resize(had + kReadChunk);
        if (timed) c.arm(Conn::read_slot, cfg_.io_timeout, "io_timeout_ms");
        const std::size_t n =
            co_await c.stream->read_some({reinterpret_cast<std::uint8_t*>(c.in.data() + had), kReadChunk}, st);
        if (timed) c.disarm(Conn::read_slot);
        c.in.resize(had + n);
        co_return n > 0;
    }

    std::string closed_why(const Conn& c, const char* while_doing) const {
        return std::string("the connection ended ") + while_doing +
               (c.expired.empty() ? "" : " (nothing within " + std::string(c.expired) + ")");
    }

    // The next ICAP head; `error` says why there is none.
    awaitable<std::optional<Head>> read_head(Conn& c, const Txn* t, std::string& error) {
        std::optional<Head> h;
        std::size_t used = 0;
        for (;;) {
            try {
                h = parse_head(c.in, used, kHeadLimit);
            } catch (const std::runtime_error& e) {
                error = e.what();
                co_return std::nullopt;
            }
            if (h) {
                c.in.erase(0, used);
                co_return h;
            }
            const bool more = co_await read_more(c, t);
            if (!more) {
                error = closed_why(c, c.in.empty() ? "before the engine answered" : "inside the engine's answer head");
                co_return std::nullopt;
            }
        }
    }

    struct Answer {
        Verdict verdict;
        bool clean_end = false;  // the answer was read to its end: the connection may be reused
        enum class Error { none, timeout, protocol, status, closed } error = Error::none;
    };

    Answer fail(Answer::Error kind, std::string why) const {
        Answer a;
        a.verdict = Verdict::failed(rule_, std::move(why));
        a.error = kind;
        return a;
    }

    // What the engine's answer means (after any 100 Continue): reads its encapsulated heads
    // and body to the end.
    awaitable<Answer> interpret(Conn& c, const Head& head, Txn& t) {
        std::string istag = clean(head.header("ISTag").value_or(""), 64);
        if (istag.size() >= 2 && istag.front() == '"' && istag.back() == '"') istag = istag.substr(1, istag.size() - 2);
        if (head.status == 204) {
            Answer a;
            a.verdict = Verdict::allow();
            a.clean_end = true;
            ++allowed_204_;
            co_return a;
        }
        if (head.status != 200)
            co_return fail(Answer::Error::status, "ICAP " + std::to_string(head.status) + " " + clean(head.reason, 100));
        const auto enc_value = head.header("Encapsulated");
        if (!enc_value) co_return fail(Answer::Error::protocol, "its 200 answer has no Encapsulated field");
        std::vector<Section> sections;
        try {
            sections = parse_encapsulated(*enc_value);
        } catch (const std::runtime_error& e) {
            co_return fail(Answer::Error::protocol, e.what());
        }
        const std::size_t heads_size = sections.back().offset;
        if (heads_size > kHeadLimit) co_return fail(Answer::Error::protocol, "Encapsulated heads larger than 64 KiB");
        while (c.in.size() < heads_size) {
            const bool more = co_await read_more(c, &t);
            if (!more) co_return fail(c.expired.empty() ? Answer::Error::protocol : Answer::Error::timeout,
                                      closed_why(c, "inside the encapsulated HTTP heads"));
        }
        const std::string heads = c.in.substr(0, heads_size);
        c.in.erase(0, heads_size);
        // Each section must be exactly one HTTP head: offsets that lie are a protocol error.
        std::optional<http::MessageHead> res_head, req_head;
        for (std::size_t i = 0; i + 1 < sections.size(); ++i) {
            const auto& s = sections[i];
            const bool is_res = s.name == "res-hdr";
            if (!is_res && s.name != "req-hdr") co_return fail(Answer::Error::protocol, "Encapsulated: '" + s.name + "' before the body");
            const std::string_view bytes = std::string_view(heads).substr(s.offset, sections[i + 1].offset - s.offset);
            http::MessageParser parser(is_res ? http::MessageParser::Kind::response : http::MessageParser::Kind::request,
                                       http::MessageLimits{});
            const auto step = parser.parse({reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()});
            if (step.event != http::MessageParser::Event::head || step.consumed != bytes.size())
                co_return fail(Answer::Error::protocol,
                               "Encapsulated offsets do not match its " + s.name + " (" +
                                   (step.event == http::MessageParser::Event::error ? step.error : "the head ends elsewhere") + ")");
            (is_res ? res_head : req_head) = parser.head();
        }
        // The body, decoded; kept when it is a page for the client.
        const bool has_body = sections.back().name != "null-body";
        const bool page_answer = res_head.has_value();
        const bool keep_body = page_answer || (t.request && req_head.has_value());
        std::string body;
        bool body_too_large = false;
        uLong crc = crc32(0, nullptr, 0);
        std::uint64_t decoded = 0;
        ChunkDecoder chunks;
        std::string piece;
        if (has_body) {
            for (;;) {
                try {
                    const std::size_t used = chunks.feed(c.in, &piece);
                    c.in.erase(0, used);
                } catch (const std::runtime_error& e) {
                    co_return fail(Answer::Error::protocol, std::string("its encapsulated body: ") + e.what());
                }
                if (!piece.empty()) {
                    crc = crc32(crc, reinterpret_cast<const Bytef*>(piece.data()), static_cast<uInt>(piece.size()));
                    decoded += piece.size();
                    if (keep_body && !body_too_large) {
                        if (body.size() + piece.size() > kMaxPageBytes) {
                            body_too_large = true;
                            body.clear();
                        } else {
                            body += piece;
                        }
                    }
                    piece.clear();
                }
                if (chunks.done()) break;
                const bool more = co_await read_more(c, &t);
                if (!more) co_return fail(c.expired.empty() ? Answer::Error::closed : Answer::Error::timeout,
                                          closed_why(c, "inside the engine's encapsulated body"));
            }
        }
        Answer a;
        a.clean_end = true;
        const std::string threat = threat_of(head);
        const bool same_body = t.all_sent && decoded == t.sent && crc == t.crc;
        const std::string tag = "ISTag " + (istag.empty() ? std::string("none") : istag);
        if (!t.request && page_answer && threat.empty() && res_head->status == t.status && same_body) {
            a.verdict = Verdict::allow();  // the response returned unmodified
            ++allowed_;
            co_return a;
        }
        const bool same_request = t.request && !page_answer && req_head && t.sent_request && same_head(*req_head, *t.sent_request);
        if (same_request && threat.empty() && same_body) {
            a.verdict = Verdict::allow();  // the request returned unmodified
            ++allowed_;
            co_return a;
        }
        std::string note = tag + (threat.empty() ? "" : ", threat " + threat);
        if (page_answer) {
            note += ", the engine answered HTTP " + std::to_string(res_head->status);
            a.verdict = Verdict::block(rule_, note);
            if (!body_too_large) {
                auto page = std::make_shared<http::Page>();
                page->status = res_head->status;
                for (const auto& [k, v] : res_head->headers) {
                    if (framing_header(k)) continue;
                    std::string name = k;
                    std::transform(name.begin(), name.end(), name.begin(), [](char ch) { return http::ascii_lower(ch); });
                    page->headers.emplace_back(std::move(name), v);
                }
                page->body = std::move(body);
                a.verdict.page = std::move(page);
            } else {
                a.verdict.note += " (its page was over 1 MiB; the node's block page is shown)";
            }
        } else if (!t.request || !req_head) {
            a.verdict = Verdict::block(rule_, note + ", the engine answered a response with a request");
        } else if (!t.sent_request) {
            a.verdict = Verdict::block(rule_, note + ", the engine modified a WebSocket message (relayed only unmodified)");
        } else if (!threat.empty()) {
            a.verdict = Verdict::block(rule_, note);
        } else {
            // A modified request (a DLP engine that redacts): sent upstream in place of the
            // client's, when the relay still can (inspect/inspector.hpp).
            std::string why;
            std::shared_ptr<inspect::RequestRewrite> rewrite;
            if (body_too_large)
                why = "the engine's modified request body is over 1 MiB";
            else
                rewrite = rewrite_of(*req_head, std::move(body), t, why);
            if (rewrite) {
                a.verdict = Verdict::allow(note + ", the engine modified the request");
                a.verdict.rewrite = std::move(rewrite);
                a.verdict.rule = rule_;
                ++rewritten_;
                co_return a;
            }
            a.verdict = Verdict::block(rule_, note + ", " + why + " (refused)");
        }
        ++blocked_;
        co_return a;
    }

    // ---- a transaction -------------------------------------------------------------------

    // Waits until at least `want` body bytes are pending or the message ended; false when
    // the relay dropped it.
    enum class BodyState { ready, wait, gone };
    static BodyState body_state(Txn& t, std::size_t want) {
        std::lock_guard lock(t.mu);
        if (t.abandoned) return BodyState::gone;
        if (t.pending.size() >= want || t.ended) return BodyState::ready;
        t.waiting = true;
        t.want = want;
        t.wake.expires_at(Clock::time_point::max());
        return BodyState::wait;
    }
    static awaitable<bool> wait_for_body(Txn& t, std::size_t want) {
        asio::error_code ec;
        for (;;) {
            const BodyState state = body_state(t, want);
            if (state != BodyState::wait) co_return state == BodyState::ready;
            co_await t.wake.async_wait(asio::redirect_error(use_awaitable, ec));
        }
    }

    // Up to `max` pending body bytes as chunks into `out`; sets `last` when that was all of it.
    static void take_body(Txn& t, std::size_t max, std::string& out, bool& last) {
        std::string bytes;
        std::function<void()> wake;
        {
            std::lock_guard lock(t.mu);
            const std::size_t n = std::min(max, t.pending.size());
            bytes = t.pending.substr(0, n);
            t.pending.erase(0, n);
            last = t.ended && t.pending.empty();
            if (t.pending.size() < kLowWater) wake = std::exchange(t.ready_wake, nullptr);
        }
        if (wake) wake();
        const auto* p = reinterpret_cast<const std::uint8_t*>(bytes.data());
        append_chunk(out, {p, bytes.size()});
        t.crc = crc32(t.crc, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size()));
        t.sent += bytes.size();
    }

    awaitable<bool> write(Conn& c, const std::string& bytes) {
        c.arm(Conn::write_slot, cfg_.io_timeout, "io_timeout_ms");
        const auto st = co_await c.stream->write_all({reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()});
        c.disarm(Conn::write_slot);
        co_return st == tls::IoStatus::ok;
    }

    // After 100 Continue (or without a preview): the rest of the body as it comes.
    awaitable<bool> send_rest(Conn& c, Txn& t, const bool& answered) {
        std::string out;
        bool last = false;
        if (t.all_sent) {
            // Sent whole with the request: the engine owes the answer.
            c.arm(Conn::total_slot, cfg_.transaction_timeout, "transaction_timeout_ms");
            if (!answered) c.arm(Conn::read_slot, cfg_.io_timeout, "io_timeout_ms");
            co_return true;
        }
        for (;;) {
            if (answered) co_return true;
            if (!co_await wait_for_body(t, 1)) {
                tls::abort_socket(c.socket);  // the relay dropped the message: end the wait for an answer
                co_return false;
            }
            if (answered) co_return true;
            out.clear();
            take_body(t, 256 * 1024, out, last);
            if (last) out += kLastChunk;
            if (!out.empty() && !co_await write(c, out)) co_return false;
            if (last) {
                t.all_sent = true;
                // The engine now owes the answer: transaction_timeout_ms from here, and
                // io_timeout_ms for the read already waiting.
                c.arm(Conn::total_slot, cfg_.transaction_timeout, "transaction_timeout_ms");
                if (!answered) c.arm(Conn::read_slot, cfg_.io_timeout, "io_timeout_ms");
                co_return true;
            }
        }
    }

    awaitable<Answer> read_final(Conn& c, Txn& t, bool& answered) {
        std::string error;
        std::optional<Head> head;
        Answer a;
        for (;;) {
            head = co_await read_head(c, &t, error);
            if (!head) {
                answered = true;
                co_return fail(c.expired.empty() ? Answer::Error::closed : Answer::Error::timeout, error);
            }
            if (head->status != 100) break;  // a 100 Continue here is late or repeated: skipped
        }
        a = co_await interpret(c, *head, t);
        answered = true;
        {
            std::lock_guard lock(t.mu);
            t.waiting = false;
        }
        t.wake.cancel();  // the sender stops waiting for body bytes
        // An answer before the whole body went out: the sender may be stuck writing to an
        // engine that reads no more; that connection is done either way.
        if (!t.all_sent) tls::abort_socket(c.socket);
        co_return a;
    }

    awaitable<Answer> transact(Txn& t) {
        std::string first = t.icap_head;
        bool ieof = false;
        if (t.whole) {
            // All of it when it ends (or, should it decode to more than announced, what has
            // come, the rest streamed).
            if (!co_await wait_for_body(t, 4 * kWholeBodyMax)) co_return Answer{};
            bool last = false;
            take_body(t, 4 * kWholeBodyMax, first, last);
            if (last) {
                first += kLastChunk;
                t.all_sent = true;
            }
        } else if (t.preview) {
            if (!co_await wait_for_body(t, *t.preview)) co_return Answer{};
            take_body(t, *t.preview, first, ieof);
            first += ieof ? kLastChunkIeof : kLastChunk;
            if (ieof) t.all_sent = true;
        }
        std::shared_ptr<Conn> c;
        Acquired got;
        std::string error;
        std::optional<Head> head;
        Answer a;
        for (int attempt = 0;; ++attempt) {
            got = co_await acquire();
            if (!got.conn) {
                ++errors_connect_;
                mark_down(got.error);
                co_return fail(Answer::Error::none, got.error);
            }
            c = std::move(got.conn);
            const bool retryable = c->reused && attempt == 0;
            if (!co_await write(*c, first)) {
                release(c, false);
                if (retryable) continue;  // the service had closed the pooled connection
                co_return fail(Answer::Error::closed, closed_why(*c, "while the request was sent"));
            }
            if (!t.preview) break;
            if (ieof) c->arm(Conn::total_slot, cfg_.transaction_timeout, "transaction_timeout_ms");
            head = co_await read_head(*c, nullptr, error);
            if (!head) {
                release(c, false);
                if (retryable && c->in.empty() && c->expired.empty()) continue;
                co_return fail(c->expired.empty() ? Answer::Error::protocol : Answer::Error::timeout, error);
            }
            if (head->status == 100) {
                if (ieof) {
                    release(c, false);
                    co_return fail(Answer::Error::protocol, "100 Continue after a preview that held the whole body (ieof)");
                }
                break;
            }
            // The engine decided on the preview alone (204, or a 200 with its answer).
            t.all_sent = ieof;
            a = co_await interpret(*c, *head, t);
            c->disarm(Conn::total_slot);
            release(c, a.clean_end);
            co_return a;
        }
        // The rest of the body while the engine may answer at any time (an early answer
        // ends the sending; that connection is then not reused).
        bool answered = false;
        auto [sent, final_answer] = co_await (send_rest(*c, t, answered) && read_final(*c, t, answered));
        c->disarm(Conn::total_slot);
        bool gone = false;
        {
            std::lock_guard lock(t.mu);
            gone = t.abandoned;
        }
        if (!sent && gone) {
            release(c, false);
            co_return Answer{};  // the relay dropped the message
        }
        release(c, final_answer.clean_end && t.all_sent);
        co_return final_answer;
    }

    static awaitable<void> run(std::shared_ptr<Service> self, std::shared_ptr<Txn> t) {
        Answer a = co_await self->transact(*t);
        bool abandoned = false;
        Clock::time_point ended_at;
        {
            std::lock_guard lock(t->mu);
            abandoned = t->abandoned && !t->verdict;
            ended_at = t->ended_at;
        }
        if (!a.verdict.decided()) {
            if (!abandoned) settle(*t, Verdict::failed(self->rule_, "the transaction ended without an answer"));
            co_return;
        }
        switch (a.error) {
        case Answer::Error::timeout: ++self->errors_timeout_; break;
        case Answer::Error::protocol:
        case Answer::Error::closed: ++self->errors_protocol_; break;
        case Answer::Error::status: ++self->errors_status_; break;
        case Answer::Error::none: break;
        }
        if (a.verdict.kind == Verdict::Kind::failed) {
            ++self->failed_;
            std::lock_guard lock(self->mu_);
            self->last_error_ = a.verdict.note;
        }
        if (ended_at != Clock::time_point{}) {
            self->latency_us_ += static_cast<std::uint64_t>(
                std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - ended_at).count());
            ++self->latency_n_;
        }
        settle(*t, std::move(a.verdict));
    }

    // ---- OPTIONS -------------------------------------------------------------------------

    void mark_down(const std::string& why) {
        bool was_up = false;
        {
            std::lock_guard lock(mu_);
            was_up = up_;
            up_ = false;
            last_error_ = why;
        }
        if (was_up) {
            log_.event("icap_service_down", rule_ + " (" + cfg_.url + "): " + why + "; messages for it follow on_error = " +
                                                (cfg_.on_error_allow ? "allow" : "block") + " until it answers OPTIONS again");
            recheck_.cancel();
        }
    }

    awaitable<std::optional<Options>> ask_options(std::string& error) {
        std::shared_ptr<Conn> c = co_await connect(error);
        if (!c) co_return std::nullopt;
        const std::string req = "OPTIONS " + url_.text + " ICAP/1.0\r\nHost: " + url_.authority() +
                                "\r\nUser-Agent: proxy-node\r\nEncapsulated: null-body=0\r\n\r\n";
        std::optional<Options> out;
        if (!co_await write(*c, req)) {
            error = closed_why(*c, "while OPTIONS was sent");
        } else {
            auto head = co_await read_head(*c, nullptr, error);
            if (head) {
                try {
                    out = parse_options(*head);
                } catch (const std::runtime_error& e) {
                    error = e.what();
                }
            }
        }
        tls::abort_socket(c->socket);
        co_return out;
    }

    // Takes an OPTIONS result (or `error`): the service's state, log lines on changes, and
    // when to ask again.
    std::chrono::milliseconds apply_options(const std::optional<Options>& opts, const std::string& error) {
        bool was_up = false;
        bool first_try = false;
        std::string istag_before;
        {
            std::lock_guard lock(mu_);
            was_up = up_;
            first_try = last_error_.empty() && !options_;
            istag_before = options_ ? options_->istag : "";
            if (opts) {
                limit_ = std::min(cfg_.max_connections, opts->max_connections.value_or(cfg_.max_connections));
                options_ = std::make_shared<const Options>(*opts);
                up_ = true;
                last_error_.clear();
            } else {
                up_ = false;
                last_error_ = "OPTIONS failed: " + error;
            }
        }
        if (!opts) {
            if (was_up || first_try)
                log_.event("icap_service_down", rule_ + " (" + cfg_.url + "): OPTIONS failed: " + error + "; retried every " +
                                                    std::to_string(cfg_.retry_interval.count()) + " ms, messages for it follow on_error = " +
                                                    (cfg_.on_error_allow ? "allow" : "block"));
            return cfg_.retry_interval;
        }
        if (!was_up || istag_before != opts->istag) {
            std::ostringstream d;
            d << rule_ << " (" << cfg_.url << "): ISTag " << opts->istag << ", methods";
            for (const auto& m : opts->methods) d << " " << m;
            d << ", preview " << (opts->preview ? std::to_string(*opts->preview) + " bytes" : std::string("none"))
              << ", 204 " << (opts->allow_204 ? "allowed" : "not allowed") << ", connections " << current_limit();
            log_.event("icap_service_up", d.str());
        }
        const auto ttl = opts->ttl.count() > 0 ? opts->ttl : std::chrono::seconds(kDefaultRecheck);
        return std::max<std::chrono::milliseconds>(ttl, kMinRecheck);
    }

    static awaitable<void> options_loop(std::shared_ptr<Service> self, std::shared_ptr<std::promise<void>> first) {
        std::string error;
        std::optional<Options> opts;
        asio::error_code ec;
        while (!self->stopping_) {
            error.clear();
            opts = co_await self->ask_options(error);
            const auto next = self->apply_options(opts, error);
            if (first) {
                first->set_value();
                first.reset();
            }
            if (self->stopping_) break;
            self->recheck_.expires_after(next);
            co_await self->recheck_.async_wait(asio::redirect_error(use_awaitable, ec));
        }
        if (first) first->set_value();
    }

    const IcapServiceSection cfg_;
    const ServiceUrl url_;
    const std::string rule_;
    asio::io_context& io_;
    ConnectionLog& log_;
    const std::uint64_t max_body_;
    const bool over_limit_block_;
    ossl::SslCtx tls_ctx_;

    mutable std::mutex mu_;  // the state below, read by begin() and status() on other threads
    bool up_ = false;
    std::shared_ptr<const Options> options_;
    std::string last_error_;
    unsigned limit_ = 1;

    // The ICAP thread's own.
    std::vector<std::shared_ptr<Conn>> idle_;
    std::vector<std::shared_ptr<asio::steady_timer>> waiters_;
    asio::steady_timer recheck_;
    bool stopping_ = false;

    mutable std::atomic<unsigned> open_{0};
    mutable std::atomic<std::uint64_t> allowed_{0}, allowed_204_{0}, rewritten_{0}, blocked_{0}, failed_{0};
    mutable std::atomic<std::uint64_t> errors_connect_{0}, errors_timeout_{0}, errors_protocol_{0}, errors_status_{0};
    mutable std::atomic<std::uint64_t> latency_us_{0}, latency_n_{0};
};

IcapEngines::IcapEngines(const NodeConfig& config, ConnectionLog& log) : io_(std::make_unique<asio::io_context>(1)) {
    for (const auto& s : config.icap) services_.push_back(std::make_shared<Service>(s, config.inspection, *io_, log));
}

IcapEngines::~IcapEngines() { stop(); }

void IcapEngines::start() {
    if (services_.empty() || thread_.joinable()) return;
    std::vector<std::future<void>> firsts;
    for (auto& s : services_) {
        auto p = std::make_shared<std::promise<void>>();
        firsts.push_back(p->get_future());
        s->start(p);
    }
    thread_ = std::thread([io = io_.get()] {
        auto work = asio::make_work_guard(*io);
        io->run();
    });
    for (auto& f : firsts) f.wait();
}

void IcapEngines::stop() {
    if (!thread_.joinable()) return;
    for (auto& s : services_) s->stop();
    io_->stop();
    thread_.join();
}

std::vector<IcapEngines::Entry> IcapEngines::engines() const {
    std::vector<Entry> out;
    for (const auto& s : services_) out.push_back({s->config().name, s, s->config().on_error_allow, s->rule()});
    return out;
}

std::vector<ServiceStatus> IcapEngines::status() const {
    std::vector<ServiceStatus> out;
    for (const auto& s : services_) out.push_back(s->status());
    return out;
}

std::string render_prometheus(const std::vector<ServiceStatus>& services) {
    if (services.empty()) return {};
    std::ostringstream o;
    auto label = [](const ServiceStatus& s) { return "service=\"" + s.name + "\""; };
    o << "# HELP proxy_icap_service_up 1 while the ICAP service answers OPTIONS.\n# TYPE proxy_icap_service_up gauge\n";
    for (const auto& s : services) o << "proxy_icap_service_up{" << label(s) << "} " << (s.up ? 1 : 0) << "\n";
    o << "# HELP proxy_icap_connections Open connections to the ICAP service, and its limit.\n# TYPE proxy_icap_connections gauge\n";
    for (const auto& s : services)
        o << "proxy_icap_connections{" << label(s) << ",kind=\"open\"} " << s.open_connections << "\n"
          << "proxy_icap_connections{" << label(s) << ",kind=\"limit\"} " << s.max_connections << "\n";
    o << "# HELP proxy_icap_transactions_total ICAP transactions by outcome (allow_204: a 204; rewrite: a modified request; failed: by on_error).\n"
         "# TYPE proxy_icap_transactions_total counter\n";
    for (const auto& s : services)
        o << "proxy_icap_transactions_total{" << label(s) << ",outcome=\"allow\"} " << s.allowed << "\n"
          << "proxy_icap_transactions_total{" << label(s) << ",outcome=\"allow_204\"} " << s.allowed_204 << "\n"
          << "proxy_icap_transactions_total{" << label(s) << ",outcome=\"rewrite\"} " << s.rewritten << "\n"
          << "proxy_icap_transactions_total{" << label(s) << ",outcome=\"block\"} " << s.blocked << "\n"
          << "proxy_icap_transactions_total{" << label(s) << ",outcome=\"failed\"} " << s.failed << "\n";
    o << "# HELP proxy_icap_errors_total ICAP failures by kind.\n# TYPE proxy_icap_errors_total counter\n";
    for (const auto& s : services)
        o << "proxy_icap_errors_total{" << label(s) << ",kind=\"connect\"} " << s.errors_connect << "\n"
          << "proxy_icap_errors_total{" << label(s) << ",kind=\"timeout\"} " << s.errors_timeout << "\n"
          << "proxy_icap_errors_total{" << label(s) << ",kind=\"protocol\"} " << s.errors_protocol << "\n"
          << "proxy_icap_errors_total{" << label(s) << ",kind=\"status\"} " << s.errors_status << "\n";
    o << "# HELP proxy_icap_answer_seconds From a message's end to the ICAP service's answer.\n"
         "# TYPE proxy_icap_answer_seconds summary\n";
    for (const auto& s : services)
        o << "proxy_icap_answer_seconds_sum{" << label(s) << "} " << static_cast<double>(s.latency_us_sum) / 1e6 << "\n"
          << "proxy_icap_answer_seconds_count{" << label(s) << "} " << s.latency_count << "\n";
    return o.str();
}

}  // namespace proxy::icap
