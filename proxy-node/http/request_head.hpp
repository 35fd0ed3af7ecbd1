#pragma once
// The head of a proxy request (request line and headers), read without consuming a byte
// past it (a CONNECT tunnel's first bytes must stay in the socket for the TLS peek) and
// parsed strictly: anything malformed or over the limit is refused.

#include <asio/awaitable.hpp>
#include <asio/ip/tcp.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace proxy::http {

struct RequestHead {
    std::string method;
    std::string target;
    std::string version;  // "HTTP/1.1" or "HTTP/1.0"
    std::vector<std::pair<std::string, std::string>> headers;

    // First value of a header (case-insensitive name), if present.
    std::optional<std::string> header(std::string_view name) const;
};

enum class HeadStatus { ok, closed, too_large, malformed };

// Reads exactly the head's bytes from the socket.
asio::awaitable<HeadStatus> read_request_head(asio::ip::tcp::socket& socket, std::size_t max_bytes, std::string& head);
// Parses a head ending in CRLF CRLF.
std::optional<RequestHead> parse_request_head(std::string_view text);

struct Authority {
    std::string host;  // without brackets for IPv6
    std::uint16_t port = 0;
};
// "host:port" with a mandatory port (CONNECT) or an optional one defaulting to `default_port`.
std::optional<Authority> parse_authority(std::string_view text, std::optional<std::uint16_t> default_port);

struct AbsoluteUrl {
    Authority authority;
    std::string path_and_query;  // origin-form, "/" at least
};
// "http://host[:port][/path]"; nullopt for anything else.
std::optional<AbsoluteUrl> parse_http_url(std::string_view text);

}  // namespace proxy::http
