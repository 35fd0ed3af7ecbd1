#pragma once
// An HTTPS origin whose answers the test writes: each request (head parsed, body decoded
// from Content-Length or chunked framing) is handed to a handler that writes the response
// itself, in as many TLS writes (records) and with as many pauses as it likes. Blocking
// OpenSSL, one thread per connection, keep-alive. Records what it received, so a test can
// assert that a blocked upload never arrived complete.

#include "support/origin_pki.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace testing_support {

struct OriginRequest {
    std::string method, target;
    std::map<std::string, std::string> headers;  // names lower-case
    std::string body;                            // decoded
    bool chunked = false;
};

class OriginConnection {
public:
    virtual ~OriginConnection() = default;
    virtual bool write(const std::string& bytes) = 0;  // one SSL_write (records of up to 16 KiB)
    void pause(std::chrono::milliseconds d);
};

// Returns false to close the connection after this response.
using OriginHandler = std::function<bool(const OriginRequest&, OriginConnection&)>;

class ScriptedOrigin {
public:
    ScriptedOrigin(const OriginCert& cert, OriginHandler handler);
    ~ScriptedOrigin();
    ScriptedOrigin(const ScriptedOrigin&) = delete;
    ScriptedOrigin& operator=(const ScriptedOrigin&) = delete;

    std::uint16_t port() const;
    // One line per request: "METHOD target complete bytes=N sha256=HEX", or
    // "METHOD target incomplete bytes=N" when the body was cut off.
    std::vector<std::string> received() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// A response with Content-Length and `body`, written in one go.
std::string http_response(const std::string& body, const std::string& extra_headers = "");

}  // namespace testing_support
