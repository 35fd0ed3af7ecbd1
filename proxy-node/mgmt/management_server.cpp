#include "mgmt/management_server.hpp"

#include "http/request_head.hpp"
#include "intercept/watchdog.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <nlohmann/json.hpp>

namespace proxy {

namespace {

constexpr std::size_t kMaxManagementHead = 4096;
constexpr std::chrono::seconds kManagementTimeout{5};
// A failed accept (out of descriptors) would fail again at once: wait rather than spin.
constexpr std::chrono::milliseconds kAcceptBackoff{50};

std::string response(int status, std::string_view type, const std::string& body) {
    std::string_view text = status == 200   ? "OK"
                            : status == 404 ? "Not Found"
                            : status == 503 ? "Service Unavailable"
                                            : "Bad Request";
    return "HTTP/1.1 " + std::to_string(status) + " " + std::string(text) + "\r\nContent-Type: " + std::string(type) +
           "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

asio::awaitable<void> answer(ManagementContext ctx, asio::ip::tcp::socket socket) {
    auto watchdog = std::make_shared<Watchdog>(socket.get_executor());
    watchdog->watch(&socket);
    watchdog->phase(kManagementTimeout);
    std::string head_text, out;
    if (co_await http::read_request_head(socket, kMaxManagementHead, head_text) == http::HeadStatus::ok) {
        auto head = http::parse_request_head(head_text);
        if (!head || head->method != "GET") {
            out = response(400, "text/plain", "GET /healthz or GET /metrics\n");
        } else if (head->target == "/healthz") {
            // 503 tells a load balancer to send clients elsewhere: this node is shutting down,
            // or the ca-service refuses it for good (revoked). A ca-service outage is not the
            // node's own: every node shares it and cached names still work, so it stays 200.
            const bool draining = ctx.metrics.draining.load();
            const bool revoked = ctx.ca.available() && ctx.ca.revoked();
            nlohmann::json j = {{"status", draining ? "draining" : revoked ? "node_revoked" : "ok"},
                                {"node", ctx.config.name},
                                {"ca_service", !ctx.ca.available() ? "unavailable"
                                               : revoked           ? "node_revoked"
                                                                   : "available"},
                                {"identity", ctx.ca.identity_status()},
                                {"cached_names", ctx.leaves.size()},
                                {"active_connections", ctx.metrics.connections_active.load()}};
            // An ICAP service that is down is every node's (they share it) and its on_error
            // decides what clients get: shown here, not a reason to leave the pool.
            if (ctx.icap != nullptr) {
                nlohmann::json services = nlohmann::json::array();
                for (const auto& s : ctx.icap->status())
                    services.push_back({{"service", s.name},
                                        {"url", s.url},
                                        {"state", s.up ? "up" : "down"},
                                        {"istag", s.istag},
                                        {"last_error", s.last_error},
                                        {"transactions", s.allowed + s.allowed_204 + s.rewritten + s.blocked + s.failed}});
                j["icap"] = std::move(services);
            }
            out = response(draining || revoked ? 503 : 200, "application/json", j.dump() + "\n");
        } else if (head->target == "/metrics") {
            // The node's identity as an info metric, so merged dashboards can tell nodes apart.
            std::string text = "# HELP proxy_node_info The node this proxy runs as (its service-PKI name).\n"
                               "# TYPE proxy_node_info gauge\nproxy_node_info{node=\"" +
                               ctx.config.name + "\"} 1\n";
            text += render_prometheus(ctx.metrics, ctx.leaves, ctx.ca);
            if (ctx.icap != nullptr) text += icap::render_prometheus(ctx.icap->status());
            out = response(200, "text/plain; version=0.0.4", text);
        } else {
            out = response(404, "text/plain", "not found\n");
        }
        asio::error_code ec;
        co_await asio::async_write(socket, asio::buffer(out), asio::redirect_error(asio::use_awaitable, ec));
    }
    watchdog->stop();
}

}  // namespace

asio::awaitable<void> serve_management(ManagementContext ctx, asio::ip::tcp::acceptor& acceptor) {
    asio::steady_timer backoff(acceptor.get_executor());
    for (;;) {
        asio::error_code ec;
        auto socket = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
        if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
        if (ec) {
            backoff.expires_after(kAcceptBackoff);
            co_await backoff.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            continue;
        }
        asio::co_spawn(acceptor.get_executor(), answer(ctx, std::move(socket)), asio::detached);
    }
}

}  // namespace proxy
