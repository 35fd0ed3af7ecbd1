#pragma once
// TLS on an Asio TCP socket, driven directly with OpenSSL on the non-blocking descriptor:
// OpenSSL reads and writes the socket itself and the coroutine only waits for readiness.
// This avoids asio::ssl's extra copy of every byte through a BIO pair on the relay path.
// One coroutine may read while another writes (same thread: the io_context is single-threaded).

#include "ossl/handles.hpp"
#include "tls/byte_stream.hpp"

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace proxy::tls {

// What went wrong in the last failed operation, for classification and logs.
struct TlsFailure {
    int ssl_error = 0;            // SSL_get_error
    unsigned long error_code = 0; // first OpenSSL error on the queue (ERR_GET_REASON etc.)
    std::string text;             // human-readable
};

class TlsStream final : public ByteStream {
public:
    // Takes the SSL (fresh, in client or server mode) and binds it to the socket's descriptor.
    TlsStream(asio::ip::tcp::socket& socket, ossl::Ssl ssl);

    SSL* ssl() const { return ssl_.get(); }
    asio::ip::tcp::socket& socket() override { return socket_; }

    asio::awaitable<bool> handshake();  // SSL_do_handshake until done; false on failure
    asio::awaitable<std::size_t> read_some(std::span<std::uint8_t> buf, IoStatus& status) override;
    asio::awaitable<IoStatus> write_all(std::span<const std::uint8_t> data) override;
    // Sends close_notify (best effort, does not wait for the peer's).
    asio::awaitable<void> close_notify() override;

    const TlsFailure& failure() const { return failure_; }
    // Data OpenSSL already holds or the socket has.
    std::size_t read_buffered(std::span<std::uint8_t> buf) override;
    bool waiting_for_peer() const override { return waiting_for_peer_; }

private:
    enum class Step { done, again, failed };
    asio::awaitable<Step> wait_for(int ssl_result);

    asio::ip::tcp::socket& socket_;
    ossl::Ssl ssl_;
    TlsFailure failure_;
    bool sent_close_ = false;
    bool waiting_for_peer_ = false;  // the last read_buffered() wanted more from the socket
};

// Raw TCP helpers for the plaintext parts (proxy request heads, peeking at a ClientHello).
// Peeks without consuming; returns the number of bytes now buffered in the socket (<= buf.size()),
// waiting for more than `have` bytes. 0 on EOF or error.
asio::awaitable<std::size_t> peek_more(asio::ip::tcp::socket& socket, std::span<std::uint8_t> buf, std::size_t have);

}  // namespace proxy::tls
