#include "api/server.hpp"

#include "ossl/digest.hpp"
#include "ossl/error.hpp"
#include "ossl/pem.hpp"
#include "protocol/leaf.hpp"
#include "protocol/limits.hpp"
#include "protocol/paths.hpp"
#include "protocol/time.hpp"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <openssl/ssl.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include <stdexcept>

namespace ca {

namespace {

constexpr int kVerifyDepth = 2;  // node -> service CA
constexpr std::size_t kDefaultAuditTail = 50;
constexpr std::chrono::seconds kUnavailableRetryAfter{5};
constexpr const char* kAdminUnit = "admins";
constexpr std::size_t kMaxAdminBody = 4096;
constexpr int kListenBacklog = 1024;


std::optional<NodeIdentity> identity_of(const httplib::Request& req) {
    if (req.ssl == nullptr) return std::nullopt;
    X509* cert = SSL_get0_peer_certificate(req.ssl);
    if (cert == nullptr || SSL_get_verify_result(req.ssl) != X509_V_OK) return std::nullopt;
    NodeIdentity id;
    id.name = ossl::common_name(*cert);
    id.fingerprint = ossl::fingerprint_sha256(*cert);
    id.admin = ossl::subject_field(*cert, NID_organizationalUnitName) == kAdminUnit;
    if (id.name.empty()) return std::nullopt;
    return id;
}

void send_error(httplib::Response& res, const protocol::Error& e, std::chrono::seconds retry_after = {}) {
    res.status = protocol::http_status(e.code);
    if (retry_after.count() > 0) res.set_header("Retry-After", std::to_string(retry_after.count()));
    res.set_content(protocol::encode_error(e), std::string(protocol::kJsonMediaType));
}

void send_json(httplib::Response& res, const nlohmann::json& j, int status = 200) {
    res.status = status;
    res.set_content(j.dump(), std::string(protocol::kJsonMediaType));
}

bool setup_tls(SSL_CTX& ctx, const TlsConfig& tls, std::string& error) {
    auto fail = [&](const std::string& what) {
        error = ossl::Error(what).what();
        return false;
    };
    if (SSL_CTX_set_min_proto_version(&ctx, TLS1_3_VERSION) != 1) return fail("requiring TLS 1.3");
    SSL_CTX_set_options(&ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    if (SSL_CTX_use_certificate_chain_file(&ctx, tls.certificate.c_str()) != 1)
        return fail("loading the server certificate " + tls.certificate.string());
    if (SSL_CTX_use_PrivateKey_file(&ctx, tls.private_key.c_str(), SSL_FILETYPE_PEM) != 1)
        return fail("loading the server key " + tls.private_key.string());
    if (SSL_CTX_check_private_key(&ctx) != 1)
        return fail(tls.private_key.string() + " does not match " + tls.certificate.string());
    // Only the service PKI authenticates; the interception root is deliberately absent.
    if (SSL_CTX_load_verify_locations(&ctx, tls.client_ca.c_str(), nullptr) != 1)
        return fail("loading the client CA " + tls.client_ca.string());
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(tls.client_ca.c_str());
    if (names == nullptr) return fail("reading the client CA names from " + tls.client_ca.string());
    SSL_CTX_set_client_CA_list(&ctx, names);
    SSL_CTX_set_verify(&ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    SSL_CTX_set_verify_depth(&ctx, kVerifyDepth);
    SSL_CTX_set_purpose(&ctx, X509_PURPOSE_SSL_CLIENT);
    return true;
}

}  // namespace

struct ApiServer::Impl {
    Impl(const ServiceConfig& c, ApiDependencies d)
        : config(c),
          deps(std::move(d)),
          server([this](SSL_CTX& ctx) { return setup_tls(ctx, config.tls, tls_error); }) {}

    const ServiceConfig& config;
    ApiDependencies deps;
    std::string tls_error;
    httplib::SSLServer server;

    // Authenticated identity, or an error response already written.
    std::optional<NodeIdentity> authenticate(const httplib::Request& req, httplib::Response& res) {
        auto id = identity_of(req);
        if (!id) {
            send_error(res, {protocol::ErrorCode::unauthenticated, "a client certificate from the service PKI is required"});
            return std::nullopt;
        }
        if (deps.nodes.is_revoked(*id)) {
            send_error(res, {protocol::ErrorCode::node_revoked,
                             "the certificate of '" + id->name + "' (sha256 " + id->fingerprint +
                                 ") has been revoked by an operator"});
            return std::nullopt;
        }
        return id;
    }

    std::optional<NodeIdentity> authenticate_admin(const httplib::Request& req, httplib::Response& res) {
        auto id = authenticate(req, res);
        if (id && !id->admin) {
            send_error(res, {protocol::ErrorCode::forbidden, "'" + id->name + "' is not an admin identity"});
            return std::nullopt;
        }
        return id;
    }

    void leaf(const httplib::Request& req, httplib::Response& res) {
        auto id = authenticate(req, res);
        if (!id) return;
        if (id->admin) {
            send_error(res, {protocol::ErrorCode::forbidden, "admin identities cannot request certificates"});
            return;
        }
        const auto type = req.get_header_value("Content-Type");
        if (!type.empty() && !type.starts_with(protocol::kJsonMediaType)) {
            send_error(res, {protocol::ErrorCode::unsupported_media_type,
                             "send the request as " + std::string(protocol::kJsonMediaType)});
            return;
        }
        auto decoded = protocol::decode_leaf_request(req.body);
        if (auto* e = std::get_if<protocol::Error>(&decoded)) {
            send_error(res, *e);
            return;
        }
        auto outcome = deps.issuance.issue(*id, std::get<protocol::LeafRequest>(decoded));
        if (auto* refusal = std::get_if<IssuanceRefusal>(&outcome)) {
            send_error(res, refusal->error, refusal->retry_after);
            return;
        }
        res.set_header("Cache-Control", "no-store");
        res.set_content(protocol::encode_leaf_response(std::get<protocol::LeafResponse>(outcome)),
                        std::string(protocol::kJsonMediaType));
    }

    nlohmann::json health_json(bool& ok) {
        auto hsm = deps.hsm_health();
        auto audit_failure = deps.audit.failure();
        ok = hsm.available && !audit_failure;
        nlohmann::json j = {{"status", ok ? "ok" : "unavailable"},
                            {"hsm", {{"available", hsm.available}, {"reconnects", hsm.reconnects}}},
                            {"audit", {{"writable", !audit_failure.has_value()}}}};
        if (!hsm.available) j["hsm"]["error"] = hsm.last_error;
        if (audit_failure) j["audit"]["error"] = *audit_failure;
        if (auto cp = deps.audit.checkpoint_failure()) j["audit"]["checkpoint_error"] = *cp;
        if (auto seq = deps.audit.last_seq()) j["audit"]["last_seq"] = *seq;
        return j;
    }

    void routes() {
        server.Post(std::string(protocol::kLeafPath), [this](const httplib::Request& req, httplib::Response& res) {
            leaf(req, res);
        });
        server.Get(std::string(protocol::kCaPath), [this](const httplib::Request& req, httplib::Response& res) {
            if (!authenticate(req, res)) return;
            res.set_content(deps.ca_bundle_pem, "application/pem-certificate-chain");
        });
        server.Get(std::string(protocol::kHealthPath), [this](const httplib::Request& req, httplib::Response& res) {
            if (!authenticate(req, res)) return;
            bool ok = false;
            auto j = health_json(ok);
            if (!ok) res.set_header("Retry-After", std::to_string(kUnavailableRetryAfter.count()));
            send_json(res, j, ok ? 200 : 503);
        });
        server.Get(std::string(protocol::kMetricsPath), [this](const httplib::Request& req, httplib::Response& res) {
            if (!authenticate(req, res)) return;
            auto hsm = deps.hsm_health();
            auto stats = deps.audit.stats();
            std::string text = deps.issuance.metrics().prometheus();
            text += "# HELP splitca_hsm_available 1 when the HSM can sign.\n# TYPE splitca_hsm_available gauge\n";
            text += "splitca_hsm_available " + std::to_string(hsm.available ? 1 : 0) + "\n";
            text += "# HELP splitca_hsm_reconnects_total HSM re-initialisations.\n# TYPE splitca_hsm_reconnects_total counter\n";
            text += "splitca_hsm_reconnects_total " + std::to_string(hsm.reconnects) + "\n";
            text += "# HELP splitca_audit_writable 1 while audit records can be written.\n# TYPE splitca_audit_writable gauge\n";
            text += "splitca_audit_writable " + std::to_string(deps.audit.failure() ? 0 : 1) + "\n";
            text += "# TYPE splitca_audit_records_total counter\nsplitca_audit_records_total " +
                    std::to_string(stats.records_written) + "\n";
            text += "# TYPE splitca_audit_syncs_total counter\nsplitca_audit_syncs_total " + std::to_string(stats.syncs) + "\n";
            text += "# TYPE splitca_audit_checkpoints_total counter\nsplitca_audit_checkpoints_total " +
                    std::to_string(stats.checkpoints_written) + "\n";
            res.set_content(text, "text/plain; version=0.0.4");
        });
        server.Get(std::string(protocol::kAdminNodesPath), [this](const httplib::Request& req, httplib::Response& res) {
            if (!authenticate_admin(req, res)) return;
            nlohmann::json nodes = nlohmann::json::array();
            for (const auto& n : deps.nodes.nodes())
                nodes.push_back({{"name", n.name},
                                 {"fingerprint", n.last_fingerprint},
                                 {"issued", n.issued},
                                 {"denied", n.denied},
                                 {"last_seen", protocol::rfc3339(std::chrono::time_point_cast<std::chrono::seconds>(n.last_seen))},
                                 {"revoked", n.revoked}});
            send_json(res, {{"nodes", nodes}, {"revoked", deps.nodes.revoked()}});
        });
        auto revocation = [this](bool revoke) {
            return [this, revoke](const httplib::Request& req, httplib::Response& res) {
                auto admin = authenticate_admin(req, res);
                if (!admin) return;
                nlohmann::json body = nlohmann::json::parse(req.body, nullptr, false);
                if (req.body.size() > kMaxAdminBody || !body.is_object() || body.size() != 1 || !body.contains("node") ||
                    !body["node"].is_string() || body["node"].get<std::string>().empty()) {
                    send_error(res, {protocol::ErrorCode::invalid_field,
                                     "send {\"node\": \"<node name or certificate sha256>\"}"});
                    return;
                }
                const std::string node = body["node"];
                bool changed = true;
                if (revoke) deps.nodes.revoke(node);
                else changed = deps.nodes.unrevoke(node);
                audit::ServiceRecord rec{revoke ? "revoke" : "unrevoke", "node " + node + " by " + admin->name};
                try {
                    deps.audit.append(rec);
                } catch (const audit::AuditUnavailable&) {
                }
                send_json(res, {{"node", node}, {"revoked", revoke}, {"changed", changed}});
            };
        };
        server.Post(std::string(protocol::kAdminRevokePath), revocation(true));
        server.Post(std::string(protocol::kAdminUnrevokePath), revocation(false));
        server.Get(std::string(protocol::kAdminAuditTailPath), [this](const httplib::Request& req, httplib::Response& res) {
            if (!authenticate_admin(req, res)) return;
            std::size_t n = kDefaultAuditTail;
            if (req.has_param("n")) {
                try {
                    n = std::stoul(req.get_param_value("n"));
                } catch (...) {
                    send_error(res, {protocol::ErrorCode::invalid_field, "n must be a whole number"});
                    return;
                }
            }
            n = std::min(n, audit::AuditLog::kTailCapacity);
            std::string out;
            for (const auto& line : deps.audit.tail(n)) out += line + "\n";
            res.set_content(out, "application/jsonl");
        });

        // Statuses httplib produces itself (404, 413, 400 on a broken request line) get the
        // same JSON error shape as everything else.
        server.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
            if (!res.body.empty()) return;
            switch (res.status) {
                case 404:
                    send_error(res, {protocol::ErrorCode::not_found, "no endpoint " + req.method + " " + req.path});
                    break;
                case 413:
                    send_error(res, {protocol::ErrorCode::body_too_large,
                                     "request bodies are limited to " + std::to_string(protocol::kMaxBodyBytes) + " bytes"});
                    break;
                case 405:
                    send_error(res, {protocol::ErrorCode::method_not_allowed, req.method + " is not allowed on " + req.path});
                    break;
                default:
                    if (res.status >= 400)
                        send_error(res, {protocol::ErrorCode::malformed_request, "the HTTP request could not be processed"});
            }
        });
        server.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
            std::string what = "unexpected error";
            try {
                std::rethrow_exception(ep);
            } catch (const std::exception& e) {
                what = e.what();
            } catch (...) {
            }
            send_error(res, {protocol::ErrorCode::internal_error, "internal error: " + what});
        });
    }
};

ApiServer::ApiServer(const ServiceConfig& config, ApiDependencies deps)
    : impl_(std::make_unique<Impl>(config, std::move(deps))) {
    if (!impl_->server.is_valid())
        throw std::runtime_error("TLS setup failed: " + (impl_->tls_error.empty() ? "unknown" : impl_->tls_error));
    auto& s = impl_->server;
    const auto& sc = config.server;
    const unsigned threads = sc.worker_threads;
    s.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    s.set_payload_max_length(protocol::kMaxBodyBytes);
    s.set_read_timeout(sc.read_timeout);
    s.set_write_timeout(sc.write_timeout);
    s.set_keep_alive_timeout(sc.keep_alive_timeout.count());
    s.set_keep_alive_max_count(sc.keep_alive_max_requests);
    s.set_tcp_nodelay(true);
    impl_->routes();
}

ApiServer::~ApiServer() = default;

namespace {

// Debian's cpp-httplib is a compiled library with a listen backlog of 5, so a burst of node
// connections would see SYNs dropped and one-second retransmits. listen() on a listening
// socket only resizes its queue: find ours (the listening socket on our port) and do that.
void widen_listen_backlog(std::uint16_t port) {
    constexpr int kMaxFd = 1024;
    for (int fd = 0; fd < kMaxFd; ++fd) {
        int listening = 0;
        socklen_t len = sizeof listening;
        if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || listening == 0) continue;
        sockaddr_storage addr{};
        socklen_t alen = sizeof addr;
        if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &alen) != 0) continue;
        std::uint16_t bound = 0;
        if (addr.ss_family == AF_INET) bound = ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
        if (addr.ss_family == AF_INET6) bound = ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
        if (bound == port) ::listen(fd, kListenBacklog);
    }
}

}  // namespace

void ApiServer::run() {
    const auto& l = impl_->config.listen;
    if (!impl_->server.bind_to_port(l.host, l.port))
        throw std::runtime_error("cannot listen on " + l.host + ":" + std::to_string(l.port) +
                                 " (in use, or not an address of this host)");
    widen_listen_backlog(l.port);
    impl_->server.listen_after_bind();
}

void ApiServer::stop() { impl_->server.stop(); }

}  // namespace ca
