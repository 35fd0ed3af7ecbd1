#pragma once
// The front's side of the channel: sends requests to the signer and hands each reply to the
// request's callback. While the signer is down (the supervisor said so, or it has not said
// hello yet) calls fail at once with 503 signer_unavailable and the reason.

#include "privsep/channel.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>

namespace ca::privsep {

class SignerLink {
public:
    explicit SignerLink(int channel_fd);  // takes the descriptor; no thread yet
    ~SignerLink();                        // stop()
    SignerLink(const SignerLink&) = delete;
    SignerLink& operator=(const SignerLink&) = delete;

    // Starts the reader thread and asks the signer for its hello.
    void start();
    // Fails what is pending ("the front is stopping") and joins the reader.
    void stop();

    // The reply body: one of the signer's replies, or Refused. `done` runs exactly once, on
    // the reader thread or (when the signer is down) before call() returns; keep it short.
    using Done = std::function<void(Body)>;
    void call(Body request, Done done);

    bool up() const;
    // Waits until the signer has said hello, at most `limit`; false when it has not.
    bool wait_up(std::chrono::milliseconds limit) const;
    std::string down_reason() const;
    std::string ca_bundle() const;
    bool is_revoked(const std::string& name, const std::string& fingerprint) const;
    std::uint32_t epoch() const;

private:
    void read_loop();
    void fail_pending(const std::string& reason);
    void learn(const Body& body);

    Channel channel_;
    Waker stop_;
    mutable std::mutex mu_;
    mutable std::condition_variable up_cv_;
    std::map<std::uint64_t, Done> pending_;
    std::uint64_t next_id_;
    std::uint32_t epoch_ = 0;
    bool up_ = false;
    bool stopping_ = false;
    std::string down_reason_ = "the signer has not said hello yet";
    std::string ca_bundle_;
    std::set<std::string> revoked_;
    std::thread reader_;
};

}  // namespace ca::privsep
