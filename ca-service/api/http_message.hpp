#pragma once
// The HTTP/1.1 subset the ca-service speaks: request heads parsed strictly and bounded,
// bodies framed by Content-Length only, responses always with Content-Length. No I/O here.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ca::http {

inline constexpr std::size_t kMaxHeadBytes = 8192;  // request line and headers together
inline constexpr std::size_t kMaxHeaders = 64;

struct Request {
    std::string method;
    std::string path;   // the target before '?'
    std::string query;  // after '?', raw
    bool http10 = false;
    std::vector<std::pair<std::string, std::string>> headers;  // names as sent
    std::size_t content_length = 0;
    bool expect_continue = false;
    bool close = false;  // the client asked for the connection to end after this request
    std::string body;

    // Case-insensitive; the first header of that name.
    std::optional<std::string_view> header(std::string_view name) const;
    // The percent-decoded value of a query parameter.
    std::optional<std::string> query_param(std::string_view name) const;
};

struct Response {
    int status = 200;
    std::string content_type;
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;  // extra headers
};

enum class ParseStatus { complete, incomplete, bad };

struct ParseResult {
    ParseStatus status = ParseStatus::incomplete;
    std::size_t head_bytes = 0;  // with the blank line, when complete
    std::string problem;         // when bad: what is wrong, for the error message
};

// Parses the head at the start of `buffer` into `out` (everything but the body).
ParseResult parse_head(std::string_view buffer, Request& out);

// The whole response; `keep_alive` decides the Connection header.
std::string serialize(const Response& response, bool keep_alive);

}  // namespace ca::http
