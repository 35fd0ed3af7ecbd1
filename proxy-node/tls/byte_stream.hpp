#pragma once
// What the relays need from one side of a connection: TLS (TlsStream) or plain TCP
// (PlainStream, for proxied http:// requests). Both run on a single-threaded io_context;
// one coroutine may read while another writes.

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

namespace proxy::tls {

enum class IoStatus { ok, eof, error };

inline constexpr std::size_t kMaxRecordPlaintext = 16 * 1024;  // RFC 8446 5.1

class ByteStream {
public:
    virtual ~ByteStream() = default;

    virtual asio::ip::tcp::socket& socket() = 0;
    // Up to buf.size() bytes; 0 with status eof/error at the end.
    virtual asio::awaitable<std::size_t> read_some(std::span<std::uint8_t> buf, IoStatus& status) = 0;
    virtual asio::awaitable<IoStatus> write_all(std::span<const std::uint8_t> data) = 0;
    // Ends this side's sending at the protocol level (TLS close_notify; nothing for plain
    // TCP). Callers shut the socket down themselves.
    virtual asio::awaitable<void> close_notify() = 0;
    // Reads what can be had without waiting; 0 when nothing is ready or on any condition
    // the next read_some() will report.
    virtual std::size_t read_buffered(std::span<std::uint8_t> buf) = 0;
    // After read_buffered() returned 0: true when the stream merely waits for the peer
    // (nothing buffered, no end or error pending), so a relay may give its buffer back
    // while it waits; false when read_some() has to say what happened.
    virtual bool waiting_for_peer() const { return false; }

    // A relay's read: up to `size` bytes into `storage`, which is given back while the
    // stream waits for the peer and made again when bytes come (an idle connection holds
    // no buffer). 0 with status eof/error at the end, error too when the wait was cancelled.
    asio::awaitable<std::size_t> read_releasing(std::unique_ptr<std::uint8_t[]>& storage, std::size_t size,
                                                IoStatus& status);

    // Passes a clean end on: close_notify, then the socket's sending side shut down (the
    // other direction may still run).
    asio::awaitable<void> end_sending();
};

// Ends every pending operation on the socket (shut down both ways, cancelled) without
// releasing its descriptor (OpenSSL may still hold it): how the relays and the watchdog stop
// a connection.
void abort_socket(asio::ip::tcp::socket& socket);

}  // namespace proxy::tls
