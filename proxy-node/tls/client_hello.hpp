#pragma once
// Reading what a client asks for (server name, ALPN protocols) from its ClientHello before
// any TLS is answered, so that the upstream can be reached and validated first.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace proxy::tls {

struct ClientHello {
    std::string server_name;         // SNI host_name, empty when absent
    std::vector<std::string> alpn;   // offered protocols, in the client's order
    std::uint16_t legacy_version = 0;               // ClientHello.legacy_version (0x0303 for TLS 1.2+)
    std::vector<std::uint16_t> supported_versions;  // the supported_versions extension (TLS 1.3 clients)
    std::vector<std::uint16_t> cipher_suites;
};

enum class HelloStatus {
    complete,   // `out` is filled
    need_more,  // a valid prefix: read more bytes
    not_tls,    // the first bytes are not a TLS handshake record
    malformed,  // a TLS record, but not a well-formed ClientHello
    too_large,  // over `max_bytes` before the ClientHello ended
};

// Parses the ClientHello at the start of `data` (possibly spread over several handshake
// records). Never reads past `data`, never throws.
HelloStatus parse_client_hello(std::span<const std::uint8_t> data, std::size_t max_bytes, ClientHello& out);

// ALPN wire format (length-prefixed names) for the protocols in `offered` that `allowed` permits.
std::vector<std::uint8_t> alpn_wire(const std::vector<std::string>& offered, const std::vector<std::string>& allowed);

}  // namespace proxy::tls
