#include "api/server.hpp"

#include "api/http_message.hpp"
#include "authority/client_identity.hpp"
#include "ossl/digest.hpp"
#include "ossl/error.hpp"
#include "ossl/pem.hpp"
#include "protocol/leaf.hpp"
#include "protocol/limits.hpp"
#include "protocol/paths.hpp"
#include "protocol/time.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/ssl.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <nlohmann/json.hpp>

#include <openssl/ssl.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <iostream>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>

namespace ca {

namespace {

using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using TlsStream = asio::ssl::stream<tcp::socket>;

constexpr std::size_t kDefaultAuditTail = 50;
constexpr std::chrono::seconds kUnavailableRetryAfter{5};
constexpr std::size_t kMaxAdminBody = 4096;
constexpr int kListenBacklog = 1024;
constexpr std::size_t kReadChunk = 16 * 1024;
constexpr std::chrono::milliseconds kAcceptPause{10};      // at max_connections, before looking again
// After a failed accept (out of descriptors or memory): the connection stays queued and
// accept() would fail again at once, so the loop waits instead of spinning a CPU.
constexpr std::chrono::milliseconds kAcceptErrorPause{50};
constexpr std::chrono::seconds kAcceptErrorReportEvery{10};  // at most one stderr line per period
constexpr std::chrono::seconds kCloseNotifyGrace{1};      // for the peer's close_notify
// A refusal sent before the request was read in full: the rest is read and dropped for this
// long, up to this much, before the connection closes (see drain_before_close).
constexpr std::chrono::seconds kLingerTime{2};
constexpr std::size_t kLingerBytes = 1 << 20;
constexpr unsigned kIoThreadsPerCore = 2;                  // the default of server.io_threads

// The client as its verified certificate says, with that certificate (DER) for the signer,
// which verifies it again.
struct Peer {
    std::optional<NodeIdentity> id;
    ossl::Bytes certificate;
};

Peer peer_of(SSL* ssl) {
    Peer peer;
    X509* cert = SSL_get0_peer_certificate(ssl);
    if (cert == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) return peer;
    peer.id = identity_from_certificate(*cert);
    if (peer.id) peer.certificate = ossl::to_der(*cert);
    return peer;
}

http::Response error_response(const protocol::Error& e, std::chrono::seconds retry_after = {}) {
    http::Response res;
    res.status = protocol::http_status(e.code);
    if (retry_after.count() > 0) res.headers.emplace_back("Retry-After", std::to_string(retry_after.count()));
    res.content_type = protocol::kJsonMediaType;
    res.body = protocol::encode_error(e);
    return res;
}

http::Response json_response(const nlohmann::json& j, int status = 200) {
    http::Response res;
    res.status = status;
    res.content_type = protocol::kJsonMediaType;
    res.body = j.dump();
    return res;
}

http::Response text_response(std::string body, std::string content_type) {
    http::Response res;
    res.content_type = std::move(content_type);
    res.body = std::move(body);
    return res;
}

void setup_tls(SSL_CTX& ctx, const TlsConfig& tls, const NodeIdentitySection& node_identity) {
    auto fail = [&](const std::string& what) { throw std::runtime_error("TLS setup failed: " + std::string(ossl::Error(what).what())); };
    if (SSL_CTX_set_min_proto_version(&ctx, TLS1_3_VERSION) != 1) fail("requiring TLS 1.3");
    SSL_CTX_set_options(&ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    if (SSL_CTX_use_certificate_chain_file(&ctx, tls.certificate.c_str()) != 1)
        fail("loading the server certificate " + tls.certificate.string());
    if (SSL_CTX_use_PrivateKey_file(&ctx, tls.private_key.c_str(), SSL_FILETYPE_PEM) != 1)
        fail("loading the server key " + tls.private_key.string());
    if (SSL_CTX_check_private_key(&ctx) != 1)
        fail(tls.private_key.string() + " does not match " + tls.certificate.string());
    // Only the service PKI authenticates; the interception root is deliberately absent.
    if (SSL_CTX_load_verify_locations(&ctx, tls.client_ca.c_str(), nullptr) != 1)
        fail("loading the client CA " + tls.client_ca.string());
    // Node identities are issued by the node-identity CA under the service CA. Nodes send it
    // with their certificate; knowing it here also accepts a node that sends its leaf alone.
    // It is no anchor: chains still end at the service CA.
    if (node_identity.enabled) {
        auto intermediate = ossl::load_certificate(node_identity.ca_certificate);
        if (X509_STORE_add_cert(SSL_CTX_get_cert_store(&ctx), intermediate.get()) != 1)
            fail("adding the node-identity CA " + node_identity.ca_certificate.string());
    }
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(tls.client_ca.c_str());
    if (names == nullptr) fail("reading the client CA names from " + tls.client_ca.string());
    SSL_CTX_set_client_CA_list(&ctx, names);
    SSL_CTX_set_verify(&ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    SSL_CTX_set_verify_depth(&ctx, kClientVerifyDepth);
    SSL_CTX_set_purpose(&ctx, X509_PURPOSE_SSL_CLIENT);
}

// One client connection. Everything on it runs on its strand: the session coroutine and the
// watchdog that closes the socket when the current deadline passes (the only way to time
// out an operation in flight on an ssl::stream).
struct Connection {
    Connection(tcp::socket socket, asio::ssl::context& tls)
        : stream(std::move(socket), tls), timer(stream.get_executor()) {}
    TlsStream stream;
    asio::steady_timer timer;
    Clock::time_point deadline = Clock::time_point::max();
    bool finished = false;
};

// Moves the deadline; an earlier one wakes the watchdog (expires_at cancels its wait), which
// then sleeps until the new one.
void set_deadline(Connection& c, Clock::time_point t) {
    c.deadline = t;
    if (t < c.timer.expiry()) c.timer.expires_at(t);
}

asio::awaitable<void> watchdog(std::shared_ptr<Connection> c) {
    while (!c->finished) {
        if (c->deadline <= Clock::now()) {
            std::error_code ec;
            c->stream.lowest_layer().close(ec);
            co_return;
        }
        c->timer.expires_at(c->deadline);
        std::error_code ec;
        co_await c->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
}

}  // namespace

struct ApiServer::Impl {
    Impl(const ServiceConfig& c, ApiDependencies d) : config(c), deps(std::move(d)) {
        setup_tls(*tls.native_handle(), config.tls, config.node_identity);
        // Signing runs on the io threads and blocks them in the HSM, so the default keeps a few
        // more threads than cores to keep the network moving meanwhile. Measured with ca-bench
        // end to end on 2 cores (32 clients, since the signer signs with session-object key
        // copies and SoftHSM no longer reads the key file per signature): 2 threads ~11.5k/s,
        // 4 ~12.0-13.3k/s, 8 ~11.5-11.7k/s, with a third fewer context switches at 4 than at 8.
        // Beyond the HSM's concurrency more threads would only wait for it.
        const unsigned cores = std::max(1U, std::thread::hardware_concurrency());
        io_threads = config.server.io_threads != 0
                         ? config.server.io_threads
                         : std::max(cores, std::min(kIoThreadsPerCore * cores, config.hsm.max_concurrent_operations));
    }

    ~Impl() {
        // Audit completions post to the io_context: none may be outstanding when it goes.
        std::unique_lock lock(mu);
        drained.wait(lock, [&] { return issuing == 0; });
    }

    const ServiceConfig& config;
    ApiDependencies deps;
    unsigned io_threads = 1;

    // Declared before the io_context: sessions destroyed with it still touch these.
    std::mutex mu;
    std::condition_variable drained;
    std::size_t issuing = 0;   // issue_async calls whose completion has not run yet
    std::size_t busy = 0;      // requests read and not yet answered
    std::atomic<std::size_t> connections{0};
    std::uint64_t accept_failures = 0;  // since the last report (the accept loop's alone)
    std::optional<std::chrono::steady_clock::time_point> last_accept_report;
    std::atomic<bool> stopping{false};
    asio::ssl::context tls{asio::ssl::context::tls_server};

    asio::io_context ioc;
    tcp::acceptor acceptor{ioc};

    // ---- requests ---------------------------------------------------------------------------
    // The front decides nothing that matters: every request that needs the CA goes to the
    // signer, which re-checks it. What the front refuses by itself (a revoked client, a
    // non-admin on an admin path) it refuses early, as a courtesy to the signer.

    // Authenticated and not revoked, or the error response.
    std::variant<NodeIdentity, http::Response> authenticate(const Peer& peer) {
        if (!peer.id)
            return error_response({protocol::ErrorCode::unauthenticated, "a client certificate from the service PKI is required"});
        if (deps.signer.is_revoked(peer.id->name, peer.id->fingerprint))
            return error_response({protocol::ErrorCode::node_revoked, "the certificate of '" + peer.id->name + "' (sha256 " +
                                                                          peer.id->fingerprint + ") has been revoked by an operator"});
        return *peer.id;
    }

    std::variant<NodeIdentity, http::Response> authenticate_admin(const Peer& peer) {
        auto r = authenticate(peer);
        if (auto* node = std::get_if<NodeIdentity>(&r); node && !node->admin)
            return error_response({protocol::ErrorCode::forbidden, "'" + node->name + "' is not an admin identity"});
        return r;
    }

    // One request to the signer; the connection holds no thread while it waits.
    asio::awaitable<privsep::Body> ask(const privsep::Body& request) {
        auto ex = co_await asio::this_coro::executor;
        std::optional<privsep::Body> reply;
        asio::steady_timer wake(ex, Clock::time_point::max());
        {
            std::lock_guard lock(mu);
            ++issuing;
        }
        auto finish = [this] {
            std::lock_guard lock(mu);
            if (--issuing == 0) drained.notify_all();
        };
        deps.signer.call(request, [ex, &reply, &wake, finish](privsep::Body body) {
            asio::post(ex, [&reply, &wake, body = std::move(body)]() mutable {
                reply = std::move(body);
                wake.cancel();
            });
            finish();
        });
        while (!reply) {
            std::error_code ec;
            co_await wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        }
        co_return std::move(*reply);
    }

    // A reply of the wrong kind is the signer's bug; the client gets a 500 that says so.
    static http::Response unexpected(const privsep::Body& body) {
        if (auto* refused = std::get_if<privsep::Refused>(&body))
            return error_response(refused->error, std::chrono::seconds(refused->retry_after_seconds));
        return error_response({protocol::ErrorCode::internal_error,
                               std::string("the signer answered with an unexpected ") + privsep::type_name(body)});
    }

    asio::awaitable<http::Response> leaf(const http::Request& req, const Peer& peer) {
        auto auth = authenticate(peer);
        if (!peer.id) co_return std::move(std::get<http::Response>(auth));
        // A revoked node's well-formed request goes on to the signer, which refuses it on the
        // record (what an operator looks for after revoking a node); anything else it sends is
        // refused here.
        if (auto* refused = std::get_if<http::Response>(&auth)) {
            const auto decoded = protocol::decode_leaf_request(req.body);
            if (!std::holds_alternative<protocol::LeafRequest>(decoded)) co_return std::move(*refused);
        }
        if (peer.id->admin) co_return error_response({protocol::ErrorCode::forbidden, "admin identities cannot request certificates"});
        const auto type = req.header("Content-Type");
        if (type && !type->empty() && !type->starts_with(protocol::kJsonMediaType))
            co_return error_response({protocol::ErrorCode::unsupported_media_type,
                                      "send the request as " + std::string(protocol::kJsonMediaType)});
        auto decoded = protocol::decode_leaf_request(req.body);
        if (auto* e = std::get_if<protocol::Error>(&decoded)) co_return error_response(*e);

        const privsep::Body request = privsep::IssueRequest{peer.certificate, std::get<protocol::LeafRequest>(decoded)};
        const privsep::Body reply = co_await ask(request);
        const auto* issued = std::get_if<privsep::Issued>(&reply);
        if (issued == nullptr) co_return unexpected(reply);
        http::Response res = text_response(protocol::encode_leaf_response(issued->leaf), std::string(protocol::kJsonMediaType));
        res.headers.emplace_back("Cache-Control", "no-store");
        co_return res;
    }

    // A node renews its identity: {"csr": "<base64 DER PKCS#10>"}; the signer decides.
    asio::awaitable<http::Response> renew_identity(const http::Request& req, const Peer& peer) {
        auto auth = authenticate(peer);
        if (!peer.id) co_return std::move(std::get<http::Response>(auth));
        if (peer.id->admin) co_return error_response({protocol::ErrorCode::forbidden, "admin identities are not renewed by the ca-service"});
        // A revoked node's request goes on to the signer, which refuses it on the record.
        const auto type = req.header("Content-Type");
        if (type && !type->empty() && !type->starts_with(protocol::kJsonMediaType))
            co_return error_response({protocol::ErrorCode::unsupported_media_type,
                                      "send the request as " + std::string(protocol::kJsonMediaType)});
        nlohmann::json body = nlohmann::json::parse(req.body, nullptr, false);
        if (!body.is_object() || body.size() != 1 || !body.contains("csr") || !body["csr"].is_string())
            co_return error_response({protocol::ErrorCode::invalid_field,
                                      "send {\"csr\": \"<base64 of a DER PKCS#10 request for a new key>\"}"});
        auto csr = ossl::from_base64(body["csr"].get<std::string>());
        if (!csr || csr->empty() || csr->size() > protocol::kMaxCsrBytes)
            co_return error_response({protocol::ErrorCode::invalid_field,
                                      "csr must be base64 of a DER PKCS#10 request of at most " +
                                          std::to_string(protocol::kMaxCsrBytes) + " bytes"});
        const privsep::Body request = privsep::RenewIdentityRequest{peer.certificate, std::move(*csr)};
        const privsep::Body reply = co_await ask(request);
        const auto* renewed = std::get_if<privsep::IdentityRenewed>(&reply);
        if (renewed == nullptr) co_return unexpected(reply);
        const auto& id = renewed->identity;
        http::Response res = json_response(
            {{"certificate", id.certificate_pem}, {"serial", id.serial_hex}, {"not_after", id.not_after}, {"audit_seq", id.audit_seq}});
        res.headers.emplace_back("Cache-Control", "no-store");
        co_return res;
    }

    static nlohmann::json health_json(const privsep::Body& reply, bool& ok) {
        const auto* h = std::get_if<privsep::HealthReport>(&reply);
        if (h == nullptr) {
            ok = false;
            const auto* refused = std::get_if<privsep::Refused>(&reply);
            return {{"status", "unavailable"},
                    {"signer", {{"available", false}, {"error", refused ? refused->error.message : "unexpected reply"}}}};
        }
        ok = h->hsm_available && h->audit_writable;
        nlohmann::json j = {{"status", ok ? "ok" : "unavailable"},
                            {"signer", {{"available", true}}},
                            {"hsm", {{"available", h->hsm_available}, {"reconnects", h->hsm_reconnects}}},
                            {"audit", {{"writable", h->audit_writable}}}};
        if (!h->hsm_available) j["hsm"]["error"] = h->hsm_error;
        if (!h->audit_writable) j["audit"]["error"] = h->audit_error;
        if (!h->checkpoint_error.empty()) j["audit"]["checkpoint_error"] = h->checkpoint_error;
        if (h->audit_last_seq) j["audit"]["last_seq"] = *h->audit_last_seq;
        return j;
    }

    http::Response metrics(const privsep::Body& reply) {
        const auto* h = std::get_if<privsep::HealthReport>(&reply);
        std::string text = h != nullptr ? h->metrics : std::string();
        text += "# HELP splitca_signer_up 1 while the signer process answers the front.\n# TYPE splitca_signer_up gauge\n";
        text += "splitca_signer_up " + std::to_string(h != nullptr ? 1 : 0) + "\n";
        text += "# HELP splitca_api_connections Open client connections.\n# TYPE splitca_api_connections gauge\n";
        text += "splitca_api_connections " + std::to_string(connections.load()) + "\n";
        return text_response(std::move(text), "text/plain; version=0.0.4");
    }

    static http::Response admin_nodes(const privsep::Body& reply) {
        const auto* list = std::get_if<privsep::NodeList>(&reply);
        if (list == nullptr) return unexpected(reply);
        nlohmann::json nodes = nlohmann::json::array();
        for (const auto& n : list->nodes)
            nodes.push_back({{"name", n.name},
                             {"fingerprint", n.last_fingerprint},
                             {"issued", n.issued},
                             {"denied", n.denied},
                             {"last_seen", protocol::rfc3339(std::chrono::time_point_cast<std::chrono::seconds>(n.last_seen))},
                             {"revoked", n.revoked}});
        return json_response({{"nodes", nodes}, {"revoked", list->revoked}});
    }

    asio::awaitable<http::Response> revocation(const http::Request& req, const Peer& peer, bool revoke) {
        nlohmann::json body = nlohmann::json::parse(req.body, nullptr, false);
        if (req.body.size() > kMaxAdminBody || !body.is_object() || body.size() != 1 || !body.contains("node") ||
            !body["node"].is_string() || body["node"].get<std::string>().empty() ||
            body["node"].get<std::string>().size() > privsep::kMaxTargetLength)
            co_return error_response({protocol::ErrorCode::invalid_field, "send {\"node\": \"<node name or certificate sha256>\"}"});
        const std::string node = body["node"];
        privsep::Body request;
        if (revoke) request = privsep::RevokeRequest{peer.certificate, node};
        else request = privsep::UnrevokeRequest{peer.certificate, node};
        const privsep::Body reply = co_await ask(request);
        const auto* done = std::get_if<privsep::RevocationDone>(&reply);
        if (done == nullptr) co_return unexpected(reply);
        co_return json_response(
            {{"node", done->target}, {"revoked", done->revoked}, {"changed", done->changed}, {"audit_seq", done->audit_seq}});
    }

    asio::awaitable<http::Response> audit_tail(const http::Request& req, const Peer& peer) {
        std::size_t n = kDefaultAuditTail;
        if (auto v = req.query_param("n")) {
            // Digits only (std::stoul would take "-1" as the largest number, and "5x" as 5).
            const auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
            if (v->empty() || ec != std::errc() || end != v->data() + v->size())
                co_return error_response({protocol::ErrorCode::invalid_field,
                                          "n must be a whole number (at most " +
                                              std::to_string(privsep::kMaxTailRecords) + " records are kept)"});
        }
        n = std::clamp<std::size_t>(n, 1, privsep::kMaxTailRecords);
        const privsep::Body request = privsep::AuditTailRequest{peer.certificate, static_cast<std::uint32_t>(n)};
        const privsep::Body reply = co_await ask(request);
        const auto* tail = std::get_if<privsep::AuditTail>(&reply);
        if (tail == nullptr) co_return unexpected(reply);
        std::string out;
        for (const auto& line : tail->records) out += line + "\n";
        http::Response res = text_response(std::move(out), "application/jsonl");
        if (tail->truncated) res.headers.emplace_back("X-Truncated", "the oldest records did not fit one reply");
        co_return res;
    }

    asio::awaitable<http::Response> route(const http::Request& req, const Peer& peer) {
        const std::string& p = req.path;
        const bool get = req.method == "GET", post = req.method == "POST";
        auto wrong_method = [&] {
            return error_response({protocol::ErrorCode::method_not_allowed, req.method + " is not allowed on " + p});
        };
        if (p == protocol::kLeafPath) {
            if (!post) co_return wrong_method();
            co_return co_await leaf(req, peer);
        }
        if (p == protocol::kIdentityRenewPath) {
            if (!post) co_return wrong_method();
            co_return co_await renew_identity(req, peer);
        }
        const bool node_get = p == protocol::kCaPath || p == protocol::kHealthPath || p == protocol::kMetricsPath;
        const bool admin_get = p == protocol::kAdminNodesPath || p == protocol::kAdminAuditTailPath;
        const bool admin_post = p == protocol::kAdminRevokePath || p == protocol::kAdminUnrevokePath;
        if (!node_get && !admin_get && !admin_post)
            co_return error_response({protocol::ErrorCode::not_found, "no endpoint " + req.method + " " + p});
        if ((node_get || admin_get) && !get) co_return wrong_method();
        if (admin_post && !post) co_return wrong_method();

        if (node_get) {
            auto auth = authenticate(peer);
            if (auto* res = std::get_if<http::Response>(&auth)) co_return std::move(*res);
            if (p == protocol::kCaPath) {
                std::string bundle = deps.signer.ca_bundle();
                if (bundle.empty()) co_return error_response({protocol::ErrorCode::signer_unavailable, deps.signer.down_reason()}, kUnavailableRetryAfter);
                co_return text_response(std::move(bundle), "application/pem-certificate-chain");
            }
            const privsep::Body request = privsep::HealthRequest{};
            const privsep::Body reply = co_await ask(request);
            if (p == protocol::kMetricsPath) co_return metrics(reply);
            bool ok = false;
            auto j = health_json(reply, ok);
            auto res = json_response(j, ok ? 200 : 503);
            if (!ok) res.headers.emplace_back("Retry-After", std::to_string(kUnavailableRetryAfter.count()));
            co_return res;
        }
        auto auth = authenticate_admin(peer);
        if (auto* res = std::get_if<http::Response>(&auth)) co_return std::move(*res);
        if (p == protocol::kAdminNodesPath) {
            const privsep::Body request = privsep::NodesRequest{peer.certificate};
            const privsep::Body reply = co_await ask(request);
            co_return admin_nodes(reply);
        }
        if (p == protocol::kAdminAuditTailPath) co_return co_await audit_tail(req, peer);
        co_return co_await revocation(req, peer, p == protocol::kAdminRevokePath);
    }

    // ---- connections ------------------------------------------------------------------------

    void begin_request() {
        std::lock_guard lock(mu);
        ++busy;
    }
    void end_request() {
        std::lock_guard lock(mu);
        if (--busy == 0) drained.notify_all();
    }

    asio::awaitable<bool> send(Connection& c, const http::Response& res, bool keep_alive) {
        const std::string wire = http::serialize(res, keep_alive);
        set_deadline(c, Clock::now() + config.server.write_timeout);
        std::error_code ec;
        co_await asio::async_write(c.stream, asio::buffer(wire), asio::redirect_error(asio::use_awaitable, ec));
        co_return !ec;
    }

    // Reads more into `buf`; false on EOF, error or timeout (the watchdog closed the socket).
    asio::awaitable<bool> read_more(Connection& c, std::string& buf) {
        const std::size_t have = buf.size();
        buf.resize(have + kReadChunk);
        std::error_code ec;
        const std::size_t n = co_await c.stream.async_read_some(asio::buffer(buf.data() + have, kReadChunk),
                                                                asio::redirect_error(asio::use_awaitable, ec));
        buf.resize(have + n);
        co_return !ec && n > 0;
    }

    // A lingering close, after an answer sent while the client may still be sending (an
    // oversized or malformed request): closing a socket with unread data makes the kernel
    // reset the connection, and the reset can reach the client before it has read the answer,
    // which it then never sees. So what keeps arriving is read and dropped, bounded in time
    // and bytes, before the close.
    asio::awaitable<void> drain_before_close(Connection& c) {
        set_deadline(c, Clock::now() + kLingerTime);
        std::string sink(kReadChunk, '\0');
        std::size_t dropped = 0;
        while (dropped < kLingerBytes) {
            std::error_code ec;
            const std::size_t n =
                co_await c.stream.async_read_some(asio::buffer(sink), asio::redirect_error(asio::use_awaitable, ec));
            if (ec || n == 0) break;
            dropped += n;
        }
    }

    asio::awaitable<void> session(std::shared_ptr<Connection> c) {
        const auto& sc = config.server;
        set_deadline(*c, Clock::now() + sc.read_timeout);
        std::error_code ec;
        co_await c->stream.async_handshake(asio::ssl::stream_base::server, asio::redirect_error(asio::use_awaitable, ec));
        if (ec) co_return;
        // The identity of the whole connection, from the verified certificate only.
        const Peer peer = peer_of(c->stream.native_handle());

        std::string buf;
        std::size_t served = 0;
        for (;;) {
            // Waiting for a request: the keep-alive timeout; once one has started, the read timeout.
            set_deadline(*c, Clock::now() + (buf.empty() ? sc.keep_alive_timeout : sc.read_timeout));
            http::Request req;
            http::ParseResult head = http::parse_head(buf, req);
            while (head.status == http::ParseStatus::incomplete) {
                if (!co_await read_more(*c, buf)) co_return;
                set_deadline(*c, Clock::now() + sc.read_timeout);
                head = http::parse_head(buf, req);
            }
            begin_request();
            struct Done {
                Impl& s;
                ~Done() { s.end_request(); }
            } done{*this};
            // (No temporaries with destructors inside co_await expressions: g++ 12 may destroy
            // them twice.)
            if (head.status == http::ParseStatus::bad) {
                const http::Response refusal = error_response(
                    {protocol::ErrorCode::malformed_request, "the HTTP request could not be processed: " + head.problem});
                co_await send(*c, refusal, false);
                co_await drain_before_close(*c);
                co_return;
            }
            if (req.content_length > protocol::kMaxBodyBytes) {
                // Not read: the connection ends after the answer.
                const http::Response refusal = error_response(
                    {protocol::ErrorCode::body_too_large,
                     "request bodies are limited to " + std::to_string(protocol::kMaxBodyBytes) + " bytes"});
                co_await send(*c, refusal, false);
                co_await drain_before_close(*c);
                co_return;
            }
            buf.erase(0, head.head_bytes);
            if (req.expect_continue && buf.size() < req.content_length) {
                static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
                set_deadline(*c, Clock::now() + sc.write_timeout);
                co_await asio::async_write(c->stream, asio::buffer(kContinue), asio::redirect_error(asio::use_awaitable, ec));
                if (ec) co_return;
                set_deadline(*c, Clock::now() + sc.read_timeout);
            }
            while (buf.size() < req.content_length)
                if (!co_await read_more(*c, buf)) co_return;
            req.body.assign(buf, 0, req.content_length);
            buf.erase(0, req.content_length);
            ++served;

            set_deadline(*c, Clock::time_point::max());  // the issuance itself is not timed out here
            http::Response res;
            try {
                res = co_await route(req, peer);
            } catch (const std::exception& e) {
                res = error_response({protocol::ErrorCode::internal_error, std::string("internal error: ") + e.what()});
            }
            const bool keep_alive = !req.close && served < sc.keep_alive_max_requests && !stopping.load();
            if (!co_await send(*c, res, keep_alive) || !keep_alive) break;
        }
        // close_notify, briefly waiting for the peer's.
        set_deadline(*c, Clock::now() + kCloseNotifyGrace);
        co_await c->stream.async_shutdown(asio::redirect_error(asio::use_awaitable, ec));
    }

    void start_session(tcp::socket socket) {
        std::error_code ec;
        socket.set_option(tcp::no_delay(true), ec);
        auto strand = asio::make_strand(ioc);
        auto c = std::make_shared<Connection>(std::move(socket), tls);
        ++connections;
        asio::co_spawn(strand, watchdog(c), asio::detached);
        asio::co_spawn(strand, session(c), [this, c](std::exception_ptr) {
            c->finished = true;
            c->timer.cancel();
            std::error_code ignored;
            c->stream.lowest_layer().close(ignored);
            --connections;
        });
    }

    asio::awaitable<void> accept_loop() {
        asio::steady_timer pause(ioc);
        for (;;) {
            if (connections.load() >= config.server.max_connections) {
                // Further clients wait in the listen backlog until a connection ends.
                pause.expires_after(kAcceptPause);
                std::error_code ec;
                co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
                if (!acceptor.is_open()) co_return;
                continue;
            }
            std::error_code ec;
            tcp::socket socket = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
            if (!acceptor.is_open()) co_return;
            if (ec) {
                report_accept_failure(ec);
                pause.expires_after(kAcceptErrorPause);
                co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
                if (!acceptor.is_open()) co_return;
                continue;
            }
            start_session(std::move(socket));
        }
    }

    // Asio retries a connection reset before accept by itself; what reaches here (EMFILE,
    // ENFILE, ENOBUFS) lasts, and is worth a line, though not one per attempt.
    void report_accept_failure(const std::error_code& ec) {
        ++accept_failures;
        const auto now = std::chrono::steady_clock::now();
        if (last_accept_report && now - *last_accept_report < kAcceptErrorReportEvery) return;
        std::cerr << "ca-service: cannot accept connections: " << ec.message() << " (" << accept_failures
                  << (accept_failures == 1 ? " failure" : " failures")
                  << "); new clients wait in the listen backlog, retried every " << kAcceptErrorPause.count()
                  << " ms\n";
        last_accept_report = now;
        accept_failures = 0;
    }
};

ApiServer::ApiServer(const ServiceConfig& config, ApiDependencies deps, int listener_fd)
    : impl_(std::make_unique<Impl>(config, std::move(deps))) {
    // The supervisor bound the socket; the front only accepts on it.
    sockaddr_storage address{};
    socklen_t length = sizeof address;
    if (::getsockname(listener_fd, reinterpret_cast<sockaddr*>(&address), &length) != 0)
        throw std::runtime_error("the listening socket handed over by the supervisor is not a socket");
    std::error_code ec;
    impl_->acceptor.assign(address.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), listener_fd, ec);
    if (ec) throw std::runtime_error("cannot use the listening socket handed over by the supervisor: " + ec.message());
}

int bind_listener(const ListenConfig& l) {
    asio::io_context ioc;
    tcp::acceptor acceptor(ioc);
    try {
        tcp::resolver resolver(ioc);
        const auto endpoint = resolver.resolve(l.host, std::to_string(l.port), tcp::resolver::passive).begin()->endpoint();
        acceptor.open(endpoint.protocol());
        acceptor.set_option(tcp::acceptor::reuse_address(true));
        acceptor.bind(endpoint);
        acceptor.listen(kListenBacklog);
    } catch (const std::system_error& e) {
        throw std::runtime_error("cannot listen on " + l.host + ":" + std::to_string(l.port) + " (" + e.what() +
                                 "; in use, or not an address of this host)");
    }
    return acceptor.release();
}

ApiServer::~ApiServer() = default;

void ApiServer::run() {
    auto& s = *impl_;
    asio::co_spawn(s.ioc, s.accept_loop(), asio::detached);
    std::vector<std::thread> threads;
    for (unsigned i = 1; i < s.io_threads; ++i) threads.emplace_back([&s] { s.ioc.run(); });
    s.ioc.run();
    for (auto& t : threads) t.join();
}

void ApiServer::stop() {
    auto& s = *impl_;
    s.stopping = true;
    asio::post(s.ioc, [&s] {
        std::error_code ec;
        s.acceptor.close(ec);
    });
    // Requests already read get their answers (bounded by the write timeout); idle
    // keep-alive connections are simply closed.
    {
        std::unique_lock lock(s.mu);
        s.drained.wait_for(lock, s.config.server.write_timeout + std::chrono::seconds(1),
                           [&] { return s.busy == 0 && s.issuing == 0; });
    }
    s.ioc.stop();
}

}  // namespace ca
