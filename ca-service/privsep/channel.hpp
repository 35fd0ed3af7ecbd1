#pragma once
// One end of the front/signer socketpair (AF_UNIX, SOCK_SEQPACKET): whole messages in,
// whole messages out. Sends are atomic, so several threads may send at once.

#include "privsep/messages.hpp"

#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace ca::privsep {

// Creates the pair with buffers large enough for kMaxMessageBytes. Both ends close-on-exec.
// Throws std::system_error.
std::pair<int, int> make_channel_pair();

// An eventfd that interrupts a blocked receive (to stop a reading thread).
class Waker {
public:
    Waker();  // throws std::system_error
    ~Waker();
    Waker(const Waker&) = delete;
    Waker& operator=(const Waker&) = delete;
    void wake() const;
    int fd() const { return fd_; }

private:
    int fd_;
};

class Channel {
public:
    explicit Channel(int fd) : fd_(fd) {}  // takes ownership
    ~Channel();
    Channel(const Channel&) = delete;
    Channel& operator=(const Channel&) = delete;

    int fd() const { return fd_; }

    // False when the peer is gone (or the message could not be sent).
    bool send(const Message& message) const;

    struct Closed {};   // no peer left
    struct Woken {};    // the waker fired
    using Received = std::variant<Message, DecodeError, Closed, Woken>;
    // Blocks for the next message, or until `waker` fires. An oversized datagram is a
    // DecodeError, never a partial read. One reading thread at a time (it reuses a buffer).
    Received receive(const Waker* waker = nullptr);

private:
    int fd_;
    std::vector<std::uint8_t> buffer_;
};

}  // namespace ca::privsep
