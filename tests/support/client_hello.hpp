#pragma once
// Real ClientHello bytes from OpenSSL's client, for tests of the proxy's ClientHello parsing
// and termination decisions (no network: the handshake is written into a memory BIO).

#include <cstdint>
#include <string>
#include <vector>

namespace testing_support {

struct HelloSpec {
    std::string sni;                     // empty: no server_name extension
    std::vector<std::uint8_t> alpn;      // wire format; empty: no ALPN
    int min_version = 0;                 // 0: OpenSSL's default
    int max_version = 0;
    std::string tls12_ciphers;           // empty: OpenSSL's default (security level 0 otherwise)
};

std::vector<std::uint8_t> openssl_client_hello(const HelloSpec& spec);

}  // namespace testing_support
