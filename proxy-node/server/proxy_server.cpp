#include "server/proxy_server.hpp"

#include "http/error_page.hpp"
#include "intercept/session.hpp"
#include "mgmt/management_server.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/v6_only.hpp>
#include <asio/redirect_error.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <cstdint>
#include <csignal>
#include <memory>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

namespace proxy {

namespace {

using asio::ip::tcp;
constexpr int kListenBacklog = 4096;
constexpr std::chrono::milliseconds kDrainPoll{100};
// Transient accept failures (EMFILE, ENFILE, ENOBUFS) back off instead of spinning.
constexpr std::chrono::milliseconds kAcceptBackoff{50};

// `transparent_socket`: IP_TRANSPARENT (IPV6_TRANSPARENT), so that connections to any
// address steered here by an nftables tproxy rule are accepted (needs CAP_NET_ADMIN).
tcp::acceptor open_acceptor(asio::io_context& io, const Endpoint& ep, const std::string& what,
                            bool transparent_socket = false) {
    tcp::acceptor acceptor(io);
    asio::error_code ec;
    tcp::endpoint endpoint(asio::ip::make_address(ep.host, ec), ep.port);
    if (ec) throw std::runtime_error(what + ": '" + ep.host + "' is not an IP address to listen on");
    acceptor.open(endpoint.protocol());
    acceptor.set_option(tcp::acceptor::reuse_address(true));
    if (transparent_socket) {
        const int one = 1;
        const bool v6 = endpoint.address().is_v6();
        if (::setsockopt(acceptor.native_handle(), v6 ? SOL_IPV6 : SOL_IP, v6 ? IPV6_TRANSPARENT : IP_TRANSPARENT, &one,
                         sizeof one) != 0)
            throw std::runtime_error(what + ": cannot set IP_TRANSPARENT on " + ep.host + ":" + std::to_string(ep.port) +
                                     " for transparent.capture = \"tproxy\": " + std::strerror(errno) +
                                     " (it needs CAP_NET_ADMIN)");
    }
    // An IPv6 listener serves IPv6 only: IPv4 is listened on where it is configured, so
    // "0.0.0.0:P" and "[::]:P" can both be listed.
    if (endpoint.address().is_v6()) acceptor.set_option(asio::ip::v6_only(true));
    acceptor.bind(endpoint, ec);
    if (ec) throw std::runtime_error(what + ": cannot listen on " + ep.host + ":" + std::to_string(ep.port) + ": " + ec.message());
    acceptor.listen(kListenBacklog);
    return acceptor;
}

// Answers at once, without waiting for the request (its head may never come): over the
// node's or the client's connection limit. What the client has sent already is read and
// dropped first, without waiting for more: closed with unread bytes, the socket would be
// reset, and a reset can overtake the answer.
// On a transparent listener (`http_answer` false) the client speaks TLS (or whatever it
// sent to its server): nothing is written, the connection is only closed.
asio::awaitable<void> refuse_at_accept(tcp::socket socket, Reason reason, bool http_answer) {
    const std::string page = http::error_response(reason, "", "");
    asio::error_code ec;
    if (http_answer) co_await asio::async_write(socket, asio::buffer(page), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    socket.non_blocking(true, ec);
    std::array<char, 4096> sink;
    for (int i = 0; i < 16 && !ec; ++i) {
        if (socket.read_some(asio::buffer(sink), ec) == 0) break;
    }
    socket.shutdown(tcp::socket::shutdown_send, ec);
}

// Lines about one kind of event, at most `lines` per `period`; the rest are counted, and the
// next line admitted says how many were left out. A scan from an unlisted network or a
// listener out of descriptors must not flood the log.
class LogRateLimit {
public:
    LogRateLimit(unsigned lines, std::chrono::seconds period) : lines_(lines), period_(period) {}

    // True when this event may be logged; `suppressed` is then the count left out before it.
    bool admit(std::uint64_t& suppressed) {
        const auto now = std::chrono::steady_clock::now();
        if (now - window_start_ >= period_) {
            window_start_ = now;
            in_window_ = 0;
        }
        if (++in_window_ > lines_) {
            ++suppressed_;
            return false;
        }
        suppressed = std::exchange(suppressed_, 0);
        return true;
    }

private:
    const unsigned lines_;
    const std::chrono::seconds period_;
    std::chrono::steady_clock::time_point window_start_{};
    unsigned in_window_ = 0;
    std::uint64_t suppressed_ = 0;
};

constexpr unsigned kRefusalLinesPerSecond = 20;

std::string endpoint_text(const tcp::endpoint& ep) {
    const auto a = ep.address();
    return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
}

// A refusal at accept: counted always, logged at most kRefusalLinesPerSecond lines a second;
// the next line admitted says how many (`which`, e.g. "from clients outside ...") were not.
void record_refusal(ProxyContext& ctx, const ConnectionRecord& rec, LogRateLimit& log_limit, const std::string& which) {
    ctx.metrics.count(rec.decision, rec.reason);
    std::uint64_t suppressed = 0;
    if (!log_limit.admit(suppressed)) return;
    if (suppressed > 0)
        ctx.log.event("refusals_not_logged", std::to_string(suppressed) + " connections " + which +
                                                 " were refused without a line each (over " +
                                                 std::to_string(kRefusalLinesPerSecond) +
                                                 " a second); proxy_refusals_total counts them all");
    ctx.log.write(rec);
}

// Over limits.max_connections_per_client: a 429 (written by the connection's worker), a log
// line (rate-limited like the other refusals) and a count.
void refuse_client_over_limit(ProxyContext& ctx, tcp::socket socket, const tcp::endpoint& remote,
                              LogRateLimit& log_limit, asio::io_context& worker, bool http_answer) {
    ConnectionRecord rec;
    rec.client = endpoint_text(remote);
    rec.decision = decision::kBlocked;
    rec.reason = Reason::client_connection_limit;
    rec.detail = "the address holds " + std::to_string(ctx.client_slots.limit()) +
                 " connections already (limits.max_connections_per_client)";
    record_refusal(ctx, rec, log_limit, "over limits.max_connections_per_client");
    asio::co_spawn(worker, refuse_at_accept(std::move(socket), Reason::client_connection_limit, http_answer),
                   asio::detached);
}

// Only access.allowed_clients may use the proxy. Others are closed before a byte of theirs
// is read or a byte written (an unlisted network learns nothing about the proxy), logged
// (rate-limited) and counted.
bool client_allowed(ProxyContext& ctx, tcp::socket& socket, LogRateLimit& log_limit) {
    asio::error_code ec;
    const auto remote = socket.remote_endpoint(ec);
    if (!ec && ctx.clients.allows(access::to_address(remote.address()))) return true;
    ConnectionRecord rec;
    if (!ec) rec.client = endpoint_text(remote);
    rec.decision = decision::kBlocked;
    rec.reason = Reason::client_not_allowed;
    rec.detail = ec ? "the client's address is unknown: " + ec.message() : "the client's address is not in access.allowed_clients";
    record_refusal(ctx, rec, log_limit, "from clients outside access.allowed_clients");
    socket.close(ec);
    return false;
}

asio::awaitable<void> accept_loop(ProxyContext& ctx, tcp::acceptor& acceptor,
                                  std::vector<std::unique_ptr<asio::io_context>>& workers, Listener kind) {
    const bool http_answer = kind == Listener::proxy;
    std::size_t next = 0;
    LogRateLimit refusal_log_limit(kRefusalLinesPerSecond, std::chrono::seconds(1));
    LogRateLimit client_limit_log_limit(kRefusalLinesPerSecond, std::chrono::seconds(1));
    LogRateLimit accept_failure_log_limit(1, std::chrono::seconds(10));
    asio::steady_timer backoff(acceptor.get_executor());
    for (;;) {
        asio::io_context& target = *workers[next++ % workers.size()];
        asio::error_code ec;
        tcp::socket socket(target);
        try {
            co_await acceptor.async_accept(socket, asio::redirect_error(asio::use_awaitable, ec));
        } catch (const std::system_error& e) {
            ec = e.code();  // an Asio service that could not be made (out of descriptors): a failed accept
        }
        if (!acceptor.is_open()) co_return;
        if (ec) {
            if (ec == asio::error::operation_aborted) co_return;
            std::uint64_t suppressed = 0;
            if (accept_failure_log_limit.admit(suppressed))
                ctx.log.event("accept_failed",
                              ec.message() + "; new clients wait in the listen backlog, retried every " +
                                  std::to_string(kAcceptBackoff.count()) + " ms" +
                                  (suppressed > 0 ? " (" + std::to_string(suppressed) + " more failures since the last line)"
                                                  : std::string()));
            backoff.expires_after(kAcceptBackoff);
            co_await backoff.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            continue;
        }
        ++ctx.metrics.connections_accepted;
        if (!client_allowed(ctx, socket, refusal_log_limit)) continue;
        if (ctx.metrics.connections_active.load() >= ctx.config.limits.max_connections) {
            ctx.metrics.count(decision::kFailed, Reason::overloaded);
            asio::co_spawn(target, refuse_at_accept(std::move(socket), Reason::overloaded, http_answer), asio::detached);
            continue;
        }
        std::optional<access::Address> counted;
        const auto remote = socket.remote_endpoint(ec);
        if (!ec) {
            counted = access::to_address(remote.address());
            if (!ctx.client_slots.try_take(*counted)) {
                refuse_client_over_limit(ctx, std::move(socket), remote, client_limit_log_limit, target, http_answer);
                continue;
            }
        }
        asio::co_spawn(target, serve_connection(ctx, std::move(socket), counted, kind), asio::detached);
    }
}

}  // namespace

int run_proxy(ProxyContext& ctx) {
    const auto& cfg = ctx.config;
    unsigned threads = cfg.worker_threads != 0 ? cfg.worker_threads : std::max(1U, std::thread::hardware_concurrency());
    std::vector<std::unique_ptr<asio::io_context>> workers;
    using Guard = asio::executor_work_guard<asio::io_context::executor_type>;
    std::vector<Guard> guards;
    for (unsigned i = 0; i < threads; ++i) {
        workers.push_back(std::make_unique<asio::io_context>(1));  // one thread each: no locking inside Asio
        guards.emplace_back(workers.back()->get_executor());
    }
    // Each worker's reactor (an epoll instance, an eventfd, a timerfd) is made now. Asio makes it
    // with the first socket or timer on that context; made later, when the process is out of
    // descriptors, it would fail in the middle of an accept.
    for (auto& w : workers) {
        [[maybe_unused]] asio::steady_timer reactor_made(*w);
    }
    asio::io_context& main_io = *workers.front();
    std::vector<tcp::acceptor> proxy_acceptors;
    std::string listening;
    for (const auto& ep : cfg.proxy_listen) {
        proxy_acceptors.push_back(open_acceptor(main_io, ep, "listen.proxy"));
        listening += (listening.empty() ? "" : ", ") + (ep.host.find(':') != std::string::npos ? "[" + ep.host + "]" : ep.host) +
                     ":" + std::to_string(ep.port);
    }
    std::vector<Listener> kinds(proxy_acceptors.size(), Listener::proxy);
    for (const auto& ep : cfg.transparent_listen) {
        proxy_acceptors.push_back(open_acceptor(main_io, ep, "listen.transparent",
                                                cfg.transparent.capture == TransparentSection::Capture::tproxy));
        kinds.push_back(Listener::transparent);
        listening += ", transparent " + (ep.host.find(':') != std::string::npos ? "[" + ep.host + "]" : ep.host) + ":" +
                     std::to_string(ep.port);
    }
    for (const auto& ep : cfg.smtp.listen) {
        proxy_acceptors.push_back(open_acceptor(main_io, ep, "listen.smtp"));
        kinds.push_back(Listener::smtp);
        listening += ", smtp " + (ep.host.find(':') != std::string::npos ? "[" + ep.host + "]" : ep.host) + ":" +
                     std::to_string(ep.port);
    }
    tcp::acceptor mgmt_acceptor = open_acceptor(main_io, cfg.management_listen, "listen.management");

    for (std::size_t i = 0; i < proxy_acceptors.size(); ++i)
        asio::co_spawn(main_io,
                       accept_loop(ctx, proxy_acceptors[i], workers, kinds[i]),
                       asio::detached);
    asio::co_spawn(main_io, serve_management({cfg, ctx.metrics, ctx.leaves, ctx.ca, ctx.icap}, mgmt_acceptor), asio::detached);

    // SIGHUP: the connection log is opened again by name (logrotate's postrotate step), so
    // lines go to the new file and the moved one can be compressed.
    asio::signal_set hangup(main_io, SIGHUP);
    std::function<void()> await_hangup = [&] {
        hangup.async_wait([&](const asio::error_code& ec, int) {
            if (ec) return;
            if (auto error = ctx.log.reopen()) ctx.log.event("log_reopen_failed", *error + "; still writing to the old file");
            else ctx.log.event("log_reopened", ctx.log.file().string());
            await_hangup();
        });
    };
    await_hangup();

    asio::signal_set signals(main_io, SIGTERM, SIGINT);
    asio::steady_timer drain_timer(main_io);
    auto drain_deadline = std::chrono::steady_clock::now();
    std::function<void()> poll_drain = [&] {
        if (ctx.metrics.connections_active.load() == 0 || std::chrono::steady_clock::now() >= drain_deadline) {
            ctx.log.event("stopped", std::to_string(ctx.metrics.connections_active.load()) +
                                         " connections cut at the drain deadline");
            asio::error_code ec;
            mgmt_acceptor.close(ec);
            hangup.cancel(ec);
            guards.clear();
            for (auto& w : workers) w->stop();
            return;
        }
        drain_timer.expires_after(kDrainPoll);
        drain_timer.async_wait([&](const asio::error_code&) { poll_drain(); });
    };
    signals.async_wait([&](const asio::error_code& ec, int signo) {
        if (ec) return;
        ctx.metrics.draining = true;
        asio::error_code ignored;
        for (auto& acceptor : proxy_acceptors) acceptor.close(ignored);  // stop accepting; management stays up
        ctx.log.event("draining", "signal " + std::to_string(signo) + ", " +
                                      std::to_string(ctx.metrics.connections_active.load()) + " open connections, up to " +
                                      std::to_string(cfg.limits.drain_timeout.count()) + " s");
        drain_deadline = std::chrono::steady_clock::now() + cfg.limits.drain_timeout;
        poll_drain();
    });

    ctx.log.event("listening", "proxy " + listening +
                                   ", management " + cfg.management_listen.host + ":" +
                                   std::to_string(cfg.management_listen.port) + ", " + std::to_string(threads) +
                                   " worker threads, up to " + std::to_string(cfg.limits.max_connections) +
                                   " connections at once");
    std::vector<std::thread> pool;
    for (unsigned i = 1; i < threads; ++i) pool.emplace_back([&, i] { workers[i]->run(); });
    main_io.run();
    for (auto& w : workers) w->stop();
    for (auto& t : pool) t.join();
    // Connections cut at the drain deadline are destroyed with their io_context (declared
    // first, so destroyed after the acceptors and timers that use it).
    return 0;
}

}  // namespace proxy
