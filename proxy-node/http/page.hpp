#pragma once
// A page for the client, apart from its framing: HTTP/1.1 (http/error_page.hpp's
// http1_response) or an HTTP/2 stream (h2/) carry the same status, headers and body. The
// node's own error and block pages are Pages, and so is an inspection engine's page (an
// ICAP service's answer) that a relay delivers in place of the node's block page.

#include <string>
#include <utility>
#include <vector>

namespace proxy::http {

struct Page {
    int status = 0;
    std::vector<std::pair<std::string, std::string>> headers;  // lower-case names; no framing headers
    std::string body;
};

}  // namespace proxy::http
