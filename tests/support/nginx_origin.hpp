#pragma once
// nginx (Debian's nginx-light) as a real HTTPS origin with HTTP/2 on, for the HTTP/2 tests
// and proxy-bench: started by the test on loopback with a configuration and a document root
// of its own (temporary), stopped by the destructor.
//   GET /<file>       a file the test wrote with put()
//   POST /upload      passed to `upload_backend` (an OriginServer on loopback, which answers
//                     "sha256=<hex> bytes=<n>"), nginx reading the whole body first

#include "support/origin_pki.hpp"
#include "support/process.hpp"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

namespace testing_support {

class NginxOrigin {
public:
    // `cert` is presented for every name. `dir` holds the configuration, logs and files.
    NginxOrigin(const OriginCert& cert, const std::filesystem::path& dir, std::uint16_t upload_backend);
    ~NginxOrigin();
    NginxOrigin(const NginxOrigin&) = delete;
    NginxOrigin& operator=(const NginxOrigin&) = delete;

    std::uint16_t port() const { return port_; }
    // The same server in cleartext HTTP/2 (h2c, prior knowledge), for relays tested without TLS.
    std::uint16_t h2c_port() const { return h2c_port_; }
    std::filesystem::path root() const { return dir_ / "www"; }
    // Writes a file under the document root.
    void put(const std::string& name, const std::string& content) const;

private:
    std::filesystem::path dir_;
    std::uint16_t port_ = 0;
    std::uint16_t h2c_port_ = 0;
    std::unique_ptr<Child> child_;
};

}  // namespace testing_support
