#include "ca_client/ca_client.hpp"

#include "protocol/limits.hpp"
#include "protocol/paths.hpp"

#include <httplib.h>

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
        if (SSL_CTX* ctx = client_.ssl_context()) SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    }
    httplib::SSLClient& http() { return client_; }

private:
    httplib::SSLClient client_;
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

CaClient::CaClient(const CaServiceSection& config) : config_(config) {
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

void CaClient::worker() {
    Connection conn(config_);
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
            result = perform(conn, job.request);
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
    Connection conn(config_);
    for (;;) {
        {
            std::unique_lock lock(mu_);
            if (stop_cv_.wait_for(lock, config_.health_interval, [&] { return stopping_; })) return;
        }
        auto res = conn.http().Get(std::string(protocol::kHealthPath));
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

}  // namespace proxy
