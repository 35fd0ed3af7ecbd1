#pragma once
// A small, fast HTTPS origin for tests and the benchmark (Asio, C++20 coroutines,
// asio::ssl): serves many certificates by SNI, keep-alive HTTP/1.1, and
//   GET /bytes/N    N bytes of a deterministic pattern (origin_pattern_byte)
//   POST /upload    reads the body, answers "sha256=<hex> bytes=<n>"
//   GET /anything   "hello from <SNI>"

#include "support/origin_pki.hpp"

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

namespace testing_support {

inline std::uint8_t origin_pattern_byte(std::uint64_t offset) { return static_cast<std::uint8_t>(offset % 251); }
// The pattern's first n bytes into a file (what a download must equal).
void write_origin_pattern(const std::filesystem::path& file, std::uint64_t n);

struct OriginOptions {
    unsigned threads = 1;
    std::string alpn;  // selected when the client offers it; empty: no ALPN
    bool max_tls12 = false;  // TLS 1.2 at most
};

class OriginServer {
public:
    // `default_cert` is presented without SNI or for unknown names; `by_name` per SNI name.
    OriginServer(const OriginCert& default_cert, const std::map<std::string, const OriginCert*>& by_name = {},
                 OriginOptions options = {});
    ~OriginServer();
    OriginServer(const OriginServer&) = delete;
    OriginServer& operator=(const OriginServer&) = delete;

    std::uint16_t port() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace testing_support
