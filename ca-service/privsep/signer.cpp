#include "privsep/signer.hpp"

#include "audit/audit_log.hpp"
#include "authority/client_identity.hpp"
#include "authority/identity_renewal.hpp"
#include "authority/issuance_service.hpp"
#include "authority/leaf_issuer.hpp"
#include "authority/node_registry.hpp"
#include "ossl/pem.hpp"
#include "policy/issuance_policy.hpp"
#include "policy/rate_limiter.hpp"
#include "privsep/channel.hpp"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <iostream>
#include <mutex>
#include <thread>

namespace ca::privsep {

namespace {

constexpr std::chrono::seconds kUnavailableRetryAfter{5};
constexpr std::size_t kMaxQueuedRequests = 4096;  // beyond: refused at once (503)
constexpr std::size_t kReplyMargin = 4096;        // header and fields around an audit tail

policy::PolicyConfig policy_config(const PolicySection& p) {
    policy::PolicyConfig c;
    c.allowed_names = p.allowed_names;
    c.denied_names = p.denied_names;
    c.allow_wildcards = p.allow_wildcards;
    c.allow_ip_addresses = p.allow_ip_addresses;
    c.max_names = p.max_names;
    c.max_lifetime = p.max_lifetime;
    c.default_lifetime = p.default_lifetime;
    c.backdate = p.backdate;
    c.public_suffix_list = p.public_suffix_list;
    return c;
}

Refused refused(protocol::ErrorCode code, std::string message, std::chrono::seconds retry_after = {}) {
    return Refused{{code, std::move(message)}, static_cast<std::uint32_t>(retry_after.count())};
}

class Signer {
public:
    Signer(const ServiceConfig& config, SignerOptions options)
        : config_(config),
          options_(options),
          channel_(options.channel_fd),
          issuing_signer_({config.hsm.token, config.hsm.issuing_key, config.hsm.max_concurrent_operations}),
          audit_signer_({config.hsm.token, config.hsm.audit_key, 2}),
          issuing_cert_(ossl::load_certificate(config.ca.issuing_certificate)),
          root_cert_(ossl::load_certificate(config.ca.root_certificate)),
          issuer_(issuing_signer_, *issuing_cert_),
          policy_(policy_config(config.policy)),
          rate_limiter_({config.rate_limit.per_node_per_second, config.rate_limit.burst}),
          nodes_(config.state_directory),
          verifier_(config.tls.client_ca, config.node_identity.enabled ? config.node_identity.ca_certificate
                                                                         : std::filesystem::path()),
          audit_({config.audit.directory, config.audit.checkpoint_every, config.audit.checkpoint_interval},
                 audit_signer_),
          issuing_pem_(ossl::to_pem(*issuing_cert_)),
          bundle_pem_(issuing_pem_ + ossl::to_pem(*root_cert_)),
          issuance_(policy_, rate_limiter_, issuer_, audit_, nodes_, {issuing_pem_}, kUnavailableRetryAfter) {
        if (config.node_identity.enabled) {
            const auto& n = config.node_identity;
            node_ca_signer_ = std::make_unique<pkcs11::HsmSigner>(pkcs11::SignerConfig{config.hsm.token, n.ca_key, 2});
            auto ca_cert = ossl::load_certificate(n.ca_certificate);
            renewer_ = std::make_unique<IdentityRenewer>(
                *node_ca_signer_, *ca_cert,
                RenewalSettings{n.renew, n.lifetime, n.renewals_per_hour, n.renewal_burst}, audit_, nodes_);
        }
        const unsigned cores = std::max(1U, std::thread::hardware_concurrency());
        workers_count_ = std::max(cores, std::min(2 * cores, config.hsm.max_concurrent_operations));
    }

    int run(const sigset_t& stop_signals) {
        audit_.append(audit::ServiceRecord{
            "start", "ca-service signer (epoch " + std::to_string(options_.epoch) + ") serving the front at " +
                         config_.listen.host + ":" + std::to_string(config_.listen.port)});
        std::thread signal_waiter([&] {
            int sig = 0;
            sigwait(&stop_signals, &sig);
            if (sig == SIGUSR1) return;  // released by run() itself
            std::cerr << "ca-service signer: signal " << sig << ", stopping\n";
            stop_.wake();
        });
        for (unsigned i = 0; i < workers_count_; ++i) workers_.emplace_back([this] { work(); });

        // Unsolicited: a front already running learns the new epoch from it.
        channel_.send({0, options_.epoch, hello()});
        if (options_.ready_fd >= 0) {
            const char ready = 1;
            [[maybe_unused]] auto n = ::write(options_.ready_fd, &ready, 1);
            ::close(options_.ready_fd);
        }
        read_loop();

        {
            std::lock_guard lock(mu_);
            stopping_ = true;
        }
        work_cv_.notify_all();
        for (auto& t : workers_) t.join();
        {
            std::unique_lock lock(mu_);
            idle_cv_.wait(lock, [&] { return in_flight_ == 0; });
        }
        pthread_kill(signal_waiter.native_handle(), SIGUSR1);
        signal_waiter.join();
        audit_.append(audit::ServiceRecord{"stop", "clean shutdown"});
        audit_.close();
        std::cerr << "ca-service signer: stopped\n";
        return 0;
    }

private:
    void read_loop() {
        for (;;) {
            auto received = channel_.receive(&stop_);
            if (std::holds_alternative<Channel::Woken>(received)) return;
            if (std::holds_alternative<Channel::Closed>(received)) {
                std::cerr << "ca-service signer: the channel is closed; stopping\n";
                return;
            }
            if (auto* bad = std::get_if<DecodeError>(&received)) {
                ++malformed_;
                std::cerr << "ca-service signer: refused a message from the front: " << bad->problem << "\n";
                if (bad->id && bad->epoch == options_.epoch)
                    channel_.send({*bad->id, options_.epoch,
                                   refused(protocol::ErrorCode::malformed_request, "the signer refused the message: " +
                                                                                         bad->problem)});
                continue;
            }
            auto& message = std::get<Message>(received);
            if (!std::holds_alternative<Attach>(message.body) && message.epoch != options_.epoch) {
                ++stale_;  // meant for a signer that died; the front has failed it already
                continue;
            }
            enqueue(std::move(message));
        }
    }

    void enqueue(Message message) {
        {
            std::lock_guard lock(mu_);
            if (queue_.size() < kMaxQueuedRequests) {
                queue_.push_back(std::move(message));
                work_cv_.notify_one();
                return;
            }
        }
        channel_.send({message.id, options_.epoch,
                       refused(protocol::ErrorCode::hsm_unavailable, "the signer is overloaded; retry shortly",
                               std::chrono::seconds(1))});
    }

    void work() {
        for (;;) {
            Message message;
            {
                std::unique_lock lock(mu_);
                work_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
                if (queue_.empty()) return;
                message = std::move(queue_.front());
                queue_.pop_front();
            }
            try {
                serve(message);
            } catch (const std::exception& e) {
                reply(message, refused(protocol::ErrorCode::internal_error, std::string("signer error: ") + e.what()));
            }
        }
    }

    void reply(const Message& request, Body body) {
        try {
            channel_.send({request.id, options_.epoch, std::move(body)});
        } catch (const std::length_error& e) {
            channel_.send({request.id, options_.epoch,
                           refused(protocol::ErrorCode::internal_error, std::string("reply too large: ") + e.what())});
        }
    }

    // The identity behind a request, verified here; nullopt after refusing it.
    std::optional<NodeIdentity> identify(const Message& request, const ossl::Bytes& certificate, bool admin_only) {
        auto verified = verifier_.verify(certificate);
        if (auto* error = std::get_if<protocol::Error>(&verified)) {
            std::cerr << "ca-service signer: " << error->message << "\n";
            reply(request, Refused{*error, 0});
            return std::nullopt;
        }
        auto& id = std::get<NodeIdentity>(verified);
        if (admin_only && !id.admin) {
            reply(request, refused(protocol::ErrorCode::forbidden, "'" + id.name + "' is not an admin identity"));
            return std::nullopt;
        }
        if (admin_only && nodes_.is_revoked(id)) {
            reply(request, refused(protocol::ErrorCode::node_revoked, "the certificate of '" + id.name + "' (sha256 " +
                                                                          id.fingerprint +
                                                                          ") has been revoked by an operator"));
            return std::nullopt;
        }
        return std::move(id);
    }

    void serve(const Message& m) {
        std::visit(
            [&](const auto& body) {
                using T = std::decay_t<decltype(body)>;
                if constexpr (std::is_same_v<T, Attach>) {
                    reply(m, hello());
                } else if constexpr (std::is_same_v<T, IssueRequest>) {
                    issue(m, body);
                } else if constexpr (std::is_same_v<T, RevokeRequest> || std::is_same_v<T, UnrevokeRequest>) {
                    if (auto admin = identify(m, body.client_certificate, true))
                        reply(m, revocation(*admin, body.target, std::is_same_v<T, RevokeRequest>));
                } else if constexpr (std::is_same_v<T, NodesRequest>) {
                    if (identify(m, body.client_certificate, true)) reply(m, NodeList{nodes_.nodes(), nodes_.revoked()});
                } else if constexpr (std::is_same_v<T, AuditTailRequest>) {
                    if (identify(m, body.client_certificate, true)) reply(m, tail(body.count));
                } else if constexpr (std::is_same_v<T, RenewIdentityRequest>) {
                    renew_identity(m, body);
                } else if constexpr (std::is_same_v<T, HealthRequest>) {
                    reply(m, health());
                } else {
                    ++malformed_;
                    reply(m, refused(protocol::ErrorCode::malformed_request,
                                     std::string("the signer takes requests, not a ") + type_name(m.body)));
                }
            },
            m.body);
    }

    void issue(const Message& m, const IssueRequest& request) {
        auto id = identify(m, request.client_certificate, false);
        if (!id) return;
        if (id->admin) {
            reply(m, refused(protocol::ErrorCode::forbidden, "admin identities cannot request certificates"));
            return;
        }
        {
            std::lock_guard lock(mu_);
            ++in_flight_;
        }
        const Message header{m.id, m.epoch, Attach{}};
        issuance_.issue_async(*id, request.leaf, [this, header](IssuanceOutcome outcome) {
            if (auto* leaf = std::get_if<protocol::LeafResponse>(&outcome)) {
                reply(header, Issued{std::move(*leaf)});
            } else {
                auto& refusal = std::get<IssuanceRefusal>(outcome);
                reply(header, Refused{std::move(refusal.error), static_cast<std::uint32_t>(refusal.retry_after.count())});
            }
            std::lock_guard lock(mu_);
            if (--in_flight_ == 0) idle_cv_.notify_all();
        });
    }

    void renew_identity(const Message& m, const RenewIdentityRequest& request) {
        auto id = identify(m, request.client_certificate, false);
        if (!id) return;
        if (!renewer_) {
            reply(m, refused(protocol::ErrorCode::forbidden,
                             "this ca-service renews no identities (its configuration has no [node_identity]); the "
                             "operator renews '" + id->name + "' with: hsm-setup renew-node " + id->name + " --out DIR"));
            return;
        }
        auto outcome = renewer_->renew(*id, request.client_certificate, request.csr);
        if (auto* done = std::get_if<RenewedIdentity>(&outcome)) {
            std::cerr << "ca-service signer: renewed the identity of '" << id->name << "' (serial " << done->serial_hex
                      << ", until " << done->not_after << ")\n";
            reply(m, IdentityRenewed{std::move(*done)});
        } else {
            auto& no = std::get<RenewalRefusal>(outcome);
            std::cerr << "ca-service signer: refused to renew the identity of '" << id->name << "': "
                      << protocol::to_string(no.error.code) << ": " << no.error.message << "\n";
            reply(m, Refused{std::move(no.error), static_cast<std::uint32_t>(no.retry_after.count())});
        }
    }

    // Recorded before applied: the audit record is durable before the registry changes, so
    // no revocation (or unrevocation) takes effect off the record.
    Body revocation(const NodeIdentity& admin, std::string target, bool revoke) {
        if (target.empty())
            return refused(protocol::ErrorCode::invalid_field, "send {\"node\": \"<node name or certificate sha256>\"}");
        const auto kind = nodes_.classify(target);
        if (kind == RevocationTarget::unknown) {
            std::string list;
            for (const auto& name : nodes_.known_names()) list += (list.empty() ? "" : ", ") + name;
            return refused(protocol::ErrorCode::not_found,
                           "no node of this CA is called '" + target + "'; known nodes: " +
                               (list.empty() ? "(none)" : list) +
                               ". Name one of them, or give a certificate's SHA-256 fingerprint (64 hex digits)");
        }
        const char* what = revoke ? "revoke" : "unrevoke";
        const std::string subject = (kind == RevocationTarget::fingerprint ? "certificate " : "node ") + target;
        std::uint64_t seq = 0;
        try {
            seq = audit_.append(audit::ServiceRecord{what, subject + " by " + admin.name});
        } catch (const audit::AuditUnavailable& e) {
            return refused(protocol::ErrorCode::audit_unavailable,
                           std::string(what) + " of '" + target + "' not applied: the audit log cannot record it (" +
                               e.what() + "); nothing changed");
        }
        bool changed = false;
        try {
            changed = revoke ? nodes_.revoke(target) : nodes_.unrevoke(target);
        } catch (const std::runtime_error& e) {
            return refused(
                protocol::ErrorCode::internal_error,
                std::string(what) + " of '" + target + "' is on the record (audit seq " + std::to_string(seq) +
                    ") but could not be saved: " + e.what() +
                    (revoke ? "; it is in force until the service restarts: fix the state directory and repeat it"
                            : "; the node stays revoked: fix the state directory and repeat it"));
        }
        return RevocationDone{target, revoke, changed, seq, nodes_.revoked()};
    }

    AuditTail tail(std::uint32_t count) {
        AuditTail out;
        out.records = audit_.tail(count);
        // What fits is the newest records: the reply still ends at the end of the log.
        std::size_t bytes = 0;
        std::size_t keep = 0;
        for (auto it = out.records.rbegin(); it != out.records.rend(); ++it, ++keep) {
            if (bytes + it->size() + 4 + kReplyMargin > kMaxMessageBytes) break;
            bytes += it->size() + 4;
        }
        if (keep < out.records.size()) {
            out.records.erase(out.records.begin(), out.records.end() - static_cast<std::ptrdiff_t>(keep));
            out.truncated = true;
        }
        return out;
    }

    Hello hello() { return Hello{bundle_pem_, nodes_.revoked()}; }

    HealthReport health() {
        HealthReport h;
        const auto hsm = issuing_signer_.health();
        h.hsm_available = hsm.available;
        h.hsm_reconnects = hsm.reconnects;
        if (!hsm.available) h.hsm_error = hsm.last_error;
        const auto failure = audit_.failure();
        h.audit_writable = !failure;
        if (failure) h.audit_error = *failure;
        if (auto cp = audit_.checkpoint_failure()) h.checkpoint_error = *cp;
        h.audit_last_seq = audit_.last_seq();
        h.revoked = nodes_.revoked();
        const auto stats = audit_.stats();
        std::string text = issuance_.metrics().prometheus();
        if (renewer_) text += renewer_->metrics();
        text += "# HELP splitca_hsm_available 1 when the HSM can sign.\n# TYPE splitca_hsm_available gauge\n";
        text += "splitca_hsm_available " + std::to_string(hsm.available ? 1 : 0) + "\n";
        text += "# HELP splitca_hsm_reconnects_total HSM re-initialisations.\n# TYPE splitca_hsm_reconnects_total counter\n";
        text += "splitca_hsm_reconnects_total " + std::to_string(hsm.reconnects) + "\n";
        text += "# HELP splitca_audit_writable 1 while audit records can be written.\n# TYPE splitca_audit_writable gauge\n";
        text += "splitca_audit_writable " + std::to_string(failure ? 0 : 1) + "\n";
        text += "# TYPE splitca_audit_records_total counter\nsplitca_audit_records_total " +
                std::to_string(stats.records_written) + "\n";
        text += "# TYPE splitca_audit_syncs_total counter\nsplitca_audit_syncs_total " + std::to_string(stats.syncs) + "\n";
        text += "# TYPE splitca_audit_checkpoints_total counter\nsplitca_audit_checkpoints_total " +
                std::to_string(stats.checkpoints_written) + "\n";
        text += "# HELP splitca_signer_refused_messages_total Messages from the front the signer could not decode.\n"
                "# TYPE splitca_signer_refused_messages_total counter\nsplitca_signer_refused_messages_total " +
                std::to_string(malformed_.load()) + "\n";
        text += "# HELP splitca_signer_stale_messages_total Requests meant for an earlier signer, dropped.\n"
                "# TYPE splitca_signer_stale_messages_total counter\nsplitca_signer_stale_messages_total " +
                std::to_string(stale_.load()) + "\n";
        text += "# HELP splitca_signer_epoch Restarts of the signer since the service started.\n"
                "# TYPE splitca_signer_epoch gauge\nsplitca_signer_epoch " + std::to_string(options_.epoch) + "\n";
        h.metrics = std::move(text);
        return h;
    }

    const ServiceConfig& config_;
    SignerOptions options_;
    Channel channel_;
    pkcs11::HsmSigner issuing_signer_;
    pkcs11::HsmSigner audit_signer_;
    ossl::X509Ptr issuing_cert_;
    ossl::X509Ptr root_cert_;
    const LeafIssuer issuer_;
    const policy::IssuancePolicy policy_;
    policy::RateLimiter rate_limiter_;
    NodeRegistry nodes_;
    ClientVerifier verifier_;
    audit::AuditLog audit_;
    const std::string issuing_pem_;
    const std::string bundle_pem_;
    IssuanceService issuance_;
    std::unique_ptr<pkcs11::HsmSigner> node_ca_signer_;  // with [node_identity]
    std::unique_ptr<IdentityRenewer> renewer_;

    unsigned workers_count_ = 1;
    Waker stop_;
    std::mutex mu_;
    std::condition_variable work_cv_;
    std::condition_variable idle_cv_;
    std::deque<Message> queue_;
    bool stopping_ = false;
    std::size_t in_flight_ = 0;  // issuances waiting for their audit record
    std::vector<std::thread> workers_;
    std::atomic<std::uint64_t> malformed_{0};
    std::atomic<std::uint64_t> stale_{0};
};

}  // namespace

int run_signer(const ServiceConfig& config, SignerOptions options) {
    if (!config.hsm.softhsm2_conf.empty()) ::setenv("SOFTHSM2_CONF", config.hsm.softhsm2_conf.c_str(), 1);
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    ::signal(SIGPIPE, SIG_IGN);
    Signer signer(config, options);
    return signer.run(stop_signals);
}

}  // namespace ca::privsep
