#include "privsep/signer_link.hpp"

#include <openssl/rand.h>

#include <iostream>

namespace ca::privsep {

namespace {

Refused unavailable(const std::string& reason) {
    return Refused{{protocol::ErrorCode::signer_unavailable, "the signing service is unavailable: " + reason}, 1};
}

bool is_reply(const Body& body) {
    return std::holds_alternative<Hello>(body) || std::holds_alternative<Issued>(body) ||
           std::holds_alternative<Refused>(body) || std::holds_alternative<RevocationDone>(body) ||
           std::holds_alternative<NodeList>(body) || std::holds_alternative<AuditTail>(body) ||
           std::holds_alternative<HealthReport>(body) || std::holds_alternative<IdentityRenewed>(body);
}

}  // namespace

SignerLink::SignerLink(int channel_fd) : channel_(channel_fd) {
    // A random first id: replies to an earlier front (still queued in the channel when this
    // one started) name ids this one never sent, and are dropped.
    if (RAND_bytes(reinterpret_cast<unsigned char*>(&next_id_), sizeof next_id_) != 1)
        throw std::runtime_error("no random bytes for the signer channel's ids");
    next_id_ = (next_id_ >> 1) | 1;  // never 0 (0 is an unsolicited hello)
}

SignerLink::~SignerLink() { stop(); }

void SignerLink::start() {
    reader_ = std::thread([this] { read_loop(); });
    call(Attach{}, [](Body) {});
}

void SignerLink::stop() {
    {
        std::lock_guard lock(mu_);
        stopping_ = true;
    }
    // Only this process's reader stops: the socket itself stays usable (the supervisor keeps
    // its descriptor for the next front).
    stop_.wake();
    if (reader_.joinable()) reader_.join();
    fail_pending("the front is stopping");
}

void SignerLink::call(Body request, Done done) {
    std::unique_lock lock(mu_);
    if (stopping_ || (!up_ && !std::holds_alternative<Attach>(request))) {
        const std::string reason = stopping_ ? "the front is stopping" : down_reason_;
        lock.unlock();
        done(unavailable(reason));
        return;
    }
    const std::uint64_t id = next_id_++;
    const std::uint32_t epoch = epoch_;
    pending_.emplace(id, std::move(done));
    lock.unlock();
    bool sent = false;
    try {
        sent = channel_.send({id, epoch, std::move(request)});
    } catch (const std::length_error& e) {
        std::cerr << "ca-service front: " << e.what() << "\n";
    }
    if (sent) return;
    lock.lock();
    auto it = pending_.find(id);
    if (it == pending_.end()) return;  // failed meanwhile (a down message)
    Done failed = std::move(it->second);
    pending_.erase(it);
    lock.unlock();
    failed(unavailable("the request could not be sent to the signer"));
}

void SignerLink::learn(const Body& body) {
    // Under mu_.
    if (auto* hello = std::get_if<Hello>(&body)) {
        ca_bundle_ = hello->ca_bundle_pem;
        revoked_ = {hello->revoked.begin(), hello->revoked.end()};
    } else if (auto* done = std::get_if<RevocationDone>(&body)) {
        revoked_ = {done->revoked_now.begin(), done->revoked_now.end()};
    } else if (auto* nodes = std::get_if<NodeList>(&body)) {
        revoked_ = {nodes->revoked.begin(), nodes->revoked.end()};
    } else if (auto* health = std::get_if<HealthReport>(&body)) {
        revoked_ = {health->revoked.begin(), health->revoked.end()};
    }
}

void SignerLink::read_loop() {
    for (;;) {
        auto received = channel_.receive(&stop_);
        if (std::holds_alternative<Channel::Woken>(received)) break;
        if (std::holds_alternative<Channel::Closed>(received)) {
            std::lock_guard lock(mu_);
            up_ = false;
            down_reason_ = "the channel to the signer is closed";
            break;
        }
        if (auto* bad = std::get_if<DecodeError>(&received)) {
            std::cerr << "ca-service front: dropped a message from the signer: " << bad->problem << "\n";
            continue;
        }
        auto& m = std::get<Message>(received);
        if (auto* down = std::get_if<SignerDown>(&m.body)) {
            {
                std::lock_guard lock(mu_);
                if (m.epoch != epoch_ && up_) continue;  // about a signer this front never used
                up_ = false;
                down_reason_ = down->reason;
            }
            std::cerr << "ca-service front: the signer is down: " << down->reason << "\n";
            fail_pending(down->reason);
            continue;
        }
        if (!is_reply(m.body)) {
            std::cerr << "ca-service front: dropped a " << type_name(m.body) << " message from the signer\n";
            continue;
        }
        Done done;
        {
            std::lock_guard lock(mu_);
            learn(m.body);
            if (std::holds_alternative<Hello>(m.body) && (m.epoch != epoch_ || !up_)) {
                const bool restarted = m.epoch != epoch_;
                epoch_ = m.epoch;
                up_ = true;
                up_cv_.notify_all();
                if (restarted) std::cerr << "ca-service front: signer epoch " << epoch_ << " is serving\n";
            }
            if (m.id == 0) continue;
            auto it = pending_.find(m.id);
            if (it == pending_.end()) continue;  // for an earlier front, or already failed
            done = std::move(it->second);
            pending_.erase(it);
        }
        done(std::move(m.body));
    }
    fail_pending(down_reason());
}

void SignerLink::fail_pending(const std::string& reason) {
    std::map<std::uint64_t, Done> failed;
    {
        std::lock_guard lock(mu_);
        failed.swap(pending_);
    }
    for (auto& [id, done] : failed) done(unavailable(reason));
}

bool SignerLink::wait_up(std::chrono::milliseconds limit) const {
    std::unique_lock lock(mu_);
    return up_cv_.wait_for(lock, limit, [&] { return up_; });
}

bool SignerLink::up() const {
    std::lock_guard lock(mu_);
    return up_;
}
std::string SignerLink::down_reason() const {
    std::lock_guard lock(mu_);
    return down_reason_;
}
std::string SignerLink::ca_bundle() const {
    std::lock_guard lock(mu_);
    return ca_bundle_;
}
bool SignerLink::is_revoked(const std::string& name, const std::string& fingerprint) const {
    std::lock_guard lock(mu_);
    return revoked_.contains(name) || revoked_.contains(fingerprint);
}
std::uint32_t SignerLink::epoch() const {
    std::lock_guard lock(mu_);
    return epoch_;
}

}  // namespace ca::privsep
