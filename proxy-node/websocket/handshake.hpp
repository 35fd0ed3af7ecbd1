#pragma once
// The opening handshake (RFC 6455 section 4) as the relay sees it: which requests ask for a
// WebSocket, whether a 101 accepts one, and which extensions the server agreed to.
//
// permessage-deflate (RFC 7692) is decoded for inspection (websocket/message_inflater.hpp),
// so the handshake is relayed unchanged and the endpoints keep their compression. Any other
// extension cannot be inspected: the upgrade is then treated as non-HTTP.

#include "http/message_parser.hpp"

#include <string>
#include <string_view>

namespace proxy::websocket {

// A GET whose Upgrade header lists "websocket" and whose Connection header lists "upgrade".
bool is_upgrade_request(const http::MessageHead& request);
// A 101 whose Upgrade header is "websocket".
bool is_upgrade_accepted(const http::MessageHead& response);

struct Extensions {
    bool permessage_deflate = false;
    std::string unsupported;  // the first negotiated extension the node cannot decode, if any
};
// The extensions in the response's Sec-WebSocket-Extensions headers (all of them, in order).
Extensions negotiated_extensions(const http::MessageHead& response);

}  // namespace proxy::websocket
