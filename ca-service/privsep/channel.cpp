#include "privsep/channel.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <vector>

namespace ca::privsep {

namespace {

// Twice the largest message: one in flight while the next is written.
constexpr int kSocketBuffer = static_cast<int>(2 * kMaxMessageBytes + 64 * 1024);

void size_buffers(int fd) {
    // Root may exceed net.core.wmem_max (FORCE); others get what the limit allows.
    for (auto [force, plain] : {std::pair{SO_SNDBUFFORCE, SO_SNDBUF}, std::pair{SO_RCVBUFFORCE, SO_RCVBUF}}) {
        if (::setsockopt(fd, SOL_SOCKET, force, &kSocketBuffer, sizeof kSocketBuffer) != 0)
            ::setsockopt(fd, SOL_SOCKET, plain, &kSocketBuffer, sizeof kSocketBuffer);
    }
}

}  // namespace

std::pair<int, int> make_channel_pair() {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0)
        throw std::system_error(errno, std::generic_category(), "socketpair for the signer channel");
    size_buffers(fds[0]);
    size_buffers(fds[1]);
    return {fds[0], fds[1]};
}

Waker::Waker() : fd_(::eventfd(0, EFD_CLOEXEC)) {
    if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
}
Waker::~Waker() { ::close(fd_); }
void Waker::wake() const {
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(fd_, &one, sizeof one);
}

Channel::~Channel() {
    if (fd_ >= 0) ::close(fd_);
}

bool Channel::send(const Message& message) const {
    const auto bytes = encode(message);
    for (;;) {
        const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n == static_cast<ssize_t>(bytes.size())) return true;
        if (n < 0 && errno == EINTR) continue;
        return false;
    }
}

Channel::Received Channel::receive(const Waker* waker) {
    for (;;) {
        pollfd fds[2] = {{fd_, POLLIN, 0}, {waker != nullptr ? waker->fd() : -1, POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            return Closed{};
        }
        if (fds[1].revents != 0) return Woken{};
        if (fds[0].revents != 0) break;
    }
    auto& buf = buffer_;
    if (buf.size() != kMaxMessageBytes + 1) buf.resize(kMaxMessageBytes + 1);
    for (;;) {
        // MSG_TRUNC: the return value is the datagram's real length, so an oversized one is
        // seen as such (and dropped whole) instead of read as a shorter message.
        const ssize_t n = ::recv(fd_, buf.data(), buf.size(), MSG_TRUNC);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return Closed{};
        if (n == 0) {
            // The peer is gone, or it sent an empty datagram: only a hang-up says which.
            pollfd p{fd_, POLLIN | POLLRDHUP, 0};
            if (::poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLRDHUP)) != 0) return Closed{};
            return DecodeError{"an empty message", {}, {}};
        }
        if (static_cast<std::size_t>(n) > kMaxMessageBytes)
            return DecodeError{"a message of " + std::to_string(n) + " bytes, over the limit of " +
                                   std::to_string(kMaxMessageBytes),
                               {}, {}};
        auto decoded = decode({buf.data(), static_cast<std::size_t>(n)});
        if (auto* m = std::get_if<Message>(&decoded)) return std::move(*m);
        return std::get<DecodeError>(std::move(decoded));
    }
}

}  // namespace ca::privsep
