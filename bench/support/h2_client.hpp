#pragma once
// A minimal blocking HTTP/2 client (libnghttp2) for proxy-bench: over a TLS connection that
// negotiated h2, GETs streamed concurrently and read to their ends. The same code measures
// the direct path and the path through the proxy.

#include <openssl/ssl.h>

#include <memory>
#include <string>

struct nghttp2_session;

namespace bench {

class H2Client {
public:
    // `ssl` is connected (blocking) and selected h2; it outlives this client.
    H2Client(SSL* ssl, std::string authority);
    ~H2Client();
    H2Client(const H2Client&) = delete;
    H2Client& operator=(const H2Client&) = delete;

    // `streams` GETs of `path` at once on this connection; the body bytes received over all
    // of them, or -1 on any failure (a status other than 200, a reset, the connection ending).
    long long get(const std::string& path, int streams);

    struct State;  // (for the nghttp2 callbacks)

private:
    SSL* ssl_;
    std::string authority_;
    std::unique_ptr<State> state_;
    nghttp2_session* session_ = nullptr;
};

}  // namespace bench
