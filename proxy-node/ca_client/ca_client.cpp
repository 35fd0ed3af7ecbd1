#include "ca_client/ca_client.hpp"

#include "protocol/limits.hpp"
#include "protocol/paths.hpp"
#include "protocol/time.hpp"

#include "ossl/encoding.hpp"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <iostream>
#include <random>

namespace proxy {

// One persistent mTLS connection to the ca-service (httplib keeps it alive between requests).
class Connection {
public:
    explicit Connection(const CaServiceSection& c)
        : client_(c.host, c.port, c.certificate.string(), c.private_key.string()) {
        client_.set_ca_cert_path(c.server_ca.string());
        client_.enable_server_certificate_verification(true);
        client_.set_keep_alive(true);
        // Headers and body go out in separate writes: without this, Nagle plus delayed ACK
        // adds ~40 ms to every request.
        client_.set_tcp_nodelay(true);
        client_.set_connection_timeout(std::chrono::duration_cast<std::chrono::microseconds>(c.connect_timeout));
        client_.set_read_timeout(std::chrono::duration_cast<std::chrono::microseconds>(c.request_timeout));
        client_.set_write_timeout(std::chrono::duration_cast<std::chrono::microseconds>(c.request_timeout));
        // httplib's client default allows TLS 1.1; the ca-service speaks TLS 1.3 only.
        if (SSL_CTX* ctx = client_.ssl_context()) {
            SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
            // httplib loads the first certificate only; the node sends its whole chain (the
            // identity, then the node-identity CA) so the service can build the path.
            valid_ = SSL_CTX_use_certificate_chain_file(ctx, c.certificate.c_str()) == 1 &&
                     SSL_CTX_check_private_key(ctx) == 1;
            ERR_clear_error();
        }
    }
    httplib::SSLClient& http() { return client_; }
    // False when the identity files could not be loaded (out of descriptors, a bad pair).
    bool valid() const { return valid_ && client_.is_valid(); }

private:
    httplib::SSLClient client_;
    bool valid_ = false;
};

namespace {

bool transient(protocol::ErrorCode code) {
    using E = protocol::ErrorCode;
    return code == E::hsm_unavailable || code == E::audit_unavailable || code == E::signer_unavailable ||
           code == E::rate_limited || code == E::internal_error;
}

bool refused_as_revoked(const std::string& body) {
    auto err = protocol::decode_error(body);
    return err && err->code == protocol::ErrorCode::node_revoked;
}

}  // namespace

CaClient::CaClient(const CaServiceSection& config)
    : config_(config), identity_files_{config.certificate, config.private_key} {
    if (auto done = recover_interrupted_renewal(identity_files_); !done.empty()) std::cerr << "proxy-node: " << done << "\n";
    try {
        const auto info = read_identity(identity_files_);
        stats_.identity_not_after =
            std::chrono::duration_cast<std::chrono::seconds>(info.not_after.time_since_epoch()).count();
        // Not looked at again before it is due (or in 10 minutes, in case an operator
        // replaces the files): no file is read while nothing is due.
        first_renewal_look_ = std::min(renewal_due(info), std::chrono::system_clock::now() + std::chrono::minutes(10));
    } catch (const std::exception& e) {
        throw std::runtime_error("ca_service.certificate: " + std::string(e.what()));
    }
    for (unsigned i = 0; i < config_.connections; ++i) workers_.emplace_back([this] { worker(); });
    prober_ = std::thread([this] { health_probe(); });
}

CaClient::~CaClient() { stop(); }

void CaClient::stop() {
    {
        std::lock_guard lock(mu_);
        if (stopping_ && workers_.empty()) return;
        stopping_ = true;
    }
    cv_.notify_all();
    stop_cv_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
    if (prober_.joinable()) prober_.join();
    std::deque<Job> left;
    {
        std::lock_guard lock(mu_);
        left.swap(queue_);
    }
    for (auto& job : left) job.done(CaFailure{CaFailure::Kind::unavailable, std::nullopt, "proxy-node is stopping"});
}

void CaClient::request_leaf(protocol::LeafRequest request, Callback done) {
    {
        std::lock_guard lock(mu_);
        if (!stopping_) {
            queue_.push_back({std::move(request), std::move(done)});
            cv_.notify_one();
            return;
        }
    }
    done(CaFailure{CaFailure::Kind::unavailable, std::nullopt, "proxy-node is stopping"});
}

void CaClient::refresh(std::unique_ptr<Connection>& conn, std::uint64_t& generation) {
    const auto now = identity_generation_.load();
    if (conn && generation == now && conn->valid()) return;
    std::lock_guard lock(files_mu_);
    conn = std::make_unique<Connection>(config_);
    generation = now;
}

void CaClient::worker() {
    std::unique_ptr<Connection> conn;
    std::uint64_t generation = 0;
    refresh(conn, generation);
    std::mt19937_64 rng(std::random_device{}());
    for (;;) {
        Job job;
        {
            std::unique_lock lock(mu_);
            cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
            if (stopping_) return;
            job = std::move(queue_.front());
            queue_.pop_front();
        }
        ++stats_.requests;
        CaResult result;
        for (unsigned attempt = 1;; ++attempt) {
            refresh(conn, generation);
            result = perform(*conn, job.request);
            auto* failure = std::get_if<CaFailure>(&result);
            bool retry = failure != nullptr && attempt < config_.max_attempts &&
                         (failure->kind == CaFailure::Kind::unavailable ||
                          (failure->code && transient(*failure->code)));
            if (!retry) break;
            ++stats_.retries;
            // Exponential backoff with full jitter, so that many nodes do not retry in step.
            auto cap = config_.retry_base_delay * (1 << (attempt - 1));
            std::uniform_int_distribution<long> jitter(cap.count() / 2, cap.count());
            std::unique_lock lock(mu_);
            if (stop_cv_.wait_for(lock, std::chrono::milliseconds(jitter(rng)), [&] { return stopping_; })) break;
        }
        if (auto* f = std::get_if<CaFailure>(&result)) {
            if (f->kind == CaFailure::Kind::refused) ++stats_.refused;
            else ++stats_.unavailable;
        } else {
            ++stats_.issued;
        }
        job.done(std::move(result));
    }
}

CaResult CaClient::perform(Connection& conn, const protocol::LeafRequest& request) {
    auto res = conn.http().Post(std::string(protocol::kLeafPath), protocol::encode_leaf_request(request),
                                std::string(protocol::kJsonMediaType));
    if (!res) {
        available_ = false;
        return CaFailure{CaFailure::Kind::unavailable, std::nullopt,
                         "certificate service unreachable at " + config_.host + ":" + std::to_string(config_.port) +
                             " (" + httplib::to_string(res.error()) + ")"};
    }
    available_ = true;
    revoked_ = res->status == 403 && refused_as_revoked(res->body);
    if (res->body.size() > protocol::kMaxResponseBytes)
        return CaFailure{CaFailure::Kind::invalid_response, std::nullopt, "certificate service response too large"};
    if (res->status != 200) {
        auto err = protocol::decode_error(res->body);
        CaFailure f{CaFailure::Kind::refused, std::nullopt,
                    "certificate service answered HTTP " + std::to_string(res->status)};
        if (err) {
            f.code = err->code;
            f.message = "certificate service refused: " + std::string(protocol::to_string(err->code)) + ": " +
                        err->message;
            if (transient(err->code)) f.kind = CaFailure::Kind::unavailable;
        } else if (res->status >= 500) {
            f.kind = CaFailure::Kind::unavailable;
        }
        return f;
    }
    auto decoded = protocol::decode_leaf_response(res->body);
    if (auto* e = std::get_if<protocol::Error>(&decoded))
        return CaFailure{CaFailure::Kind::invalid_response, std::nullopt,
                         "certificate service response does not decode: " + e->message};
    return std::get<protocol::LeafResponse>(std::move(decoded));
}

void CaClient::health_probe() {
    std::unique_ptr<Connection> conn;
    std::uint64_t generation = 0;
    refresh(conn, generation);
    auto next_renewal_look = first_renewal_look_;
    for (;;) {
        {
            std::unique_lock lock(mu_);
            if (stop_cv_.wait_for(lock, config_.health_interval, [&] { return stopping_; })) return;
        }
        refresh(conn, generation);
        if (config_.renew_identity && std::chrono::system_clock::now() >= next_renewal_look) {
            try {
                next_renewal_look = maybe_renew_identity(*conn);
            } catch (const std::exception& e) {
                ++stats_.identity_renewal_failures;
                set_identity_status(std::string("renewal failing: ") + e.what());
                std::cerr << "proxy-node: identity renewal failed: " << e.what() << "\n";
                next_renewal_look = std::chrono::system_clock::now() + std::chrono::seconds(30);
            }
            refresh(conn, generation);
        }
        auto res = conn->http().Get(std::string(protocol::kHealthPath));
        if (res && res->status == 200) {
            available_ = true;
            revoked_ = false;
        } else if (res && res->status == 403 && refused_as_revoked(res->body)) {
            // Reachable, and it will say so to every request: not an outage.
            available_ = true;
            revoked_ = true;
        } else {
            available_ = false;
        }
    }
}

std::string CaClient::identity_status() const {
    std::lock_guard lock(status_mu_);
    return identity_status_;
}

void CaClient::set_identity_status(std::string status) {
    std::lock_guard lock(status_mu_);
    identity_status_ = std::move(status);
}

std::chrono::system_clock::time_point CaClient::renewal_due(const IdentityInfo& info) const {
    const auto lifetime = info.not_after - info.not_before;
    const auto before = config_.renew_before.count() > 0
                            ? std::chrono::duration_cast<std::chrono::system_clock::duration>(config_.renew_before)
                            : lifetime / 3;
    return info.not_after - before;
}

std::chrono::system_clock::time_point CaClient::maybe_renew_identity(Connection& conn) {
    using namespace std::chrono;
    IdentityInfo info;
    {
        std::lock_guard lock(files_mu_);
        info = read_identity(identity_files_);
    }
    stats_.identity_not_after = duration_cast<seconds>(info.not_after.time_since_epoch()).count();
    const auto now = system_clock::now();
    const auto due = renewal_due(info);
    const std::string until = protocol::rfc3339(time_point_cast<seconds>(info.not_after));
    if (now >= info.not_after) {
        std::string status = "expired: the identity of '" + info.name + "' expired at " + until +
                             "; the ca-service renews only a valid identity: run hsm-setup renew-node " + info.name +
                             " --out DIR and restart this node";
        if (identity_status() != status) std::cerr << "proxy-node: " << status << "\n";
        set_identity_status(std::move(status));
        return now + minutes(1);
    }
    if (now < due) {
        // Looked at again well before it is due, in case an operator replaced the files.
        set_identity_status("ok");
        return std::min(due, now + minutes(10));
    }

    const auto retry = std::clamp<system_clock::duration>((info.not_after - now) / 10, seconds(10), minutes(10));
    auto fail = [&](const std::string& why, system_clock::duration wait) {
        ++stats_.identity_renewal_failures;
        set_identity_status("renewal failing: " + why);
        std::cerr << "proxy-node: renewing the identity of '" << info.name << "' (valid until " << until
                  << ") failed: " << why << "; next try in " << duration_cast<seconds>(wait).count() << " s\n";
        return now + wait;
    };
    RenewalRequest request = make_renewal_request(info.name);
    const std::string body = nlohmann::json{{"csr", ossl::to_base64(request.csr)}}.dump();
    auto res = conn.http().Post(std::string(protocol::kIdentityRenewPath), body, std::string(protocol::kJsonMediaType));
    if (!res)
        return fail("certificate service unreachable at " + config_.host + ":" + std::to_string(config_.port) + " (" +
                        httplib::to_string(res.error()) + ")",
                    retry);
    if (res->status != 200) {
        auto err = protocol::decode_error(res->body);
        std::string why = "HTTP " + std::to_string(res->status);
        if (err) why = std::string(protocol::to_string(err->code)) + ": " + err->message;
        auto wait = retry;
        if (res->has_header("Retry-After")) {
            const auto& v = res->get_header_value("Retry-After");
            std::int64_t after = 0;
            const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), after);
            if (ec == std::errc() && end == v.data() + v.size() && after > 0)
                wait = std::max<system_clock::duration>(wait, seconds(std::min<std::int64_t>(after, 3600)));
        }
        return fail(why, wait);
    }
    const auto answer = nlohmann::json::parse(res->body, nullptr, false);
    if (!answer.is_object() || !answer.contains("certificate") || !answer["certificate"].is_string())
        return fail("the answer holds no certificate", retry);
    const std::string chain = answer["certificate"].get<std::string>();
    if (auto problem = check_renewed_identity(chain, *request.key, info.name, config_.server_ca))
        return fail("refused the new certificate: " + *problem, retry);
    {
        std::lock_guard lock(files_mu_);
        install_identity(identity_files_, *request.key, chain);
        info = read_identity(identity_files_);
    }
    ++identity_generation_;
    ++stats_.identity_renewals;
    stats_.identity_not_after = duration_cast<seconds>(info.not_after.time_since_epoch()).count();
    set_identity_status("ok");
    std::cerr << "proxy-node: renewed the identity of '" << info.name << "': serial "
              << answer.value("serial", std::string("?")) << ", valid until "
              << protocol::rfc3339(time_point_cast<seconds>(info.not_after)) << " (" << identity_files_.certificate.string()
              << ")\n";
    return now + seconds(1);
}

}  // namespace proxy
