#pragma once
// The relay between the two decrypted streams of an intercepted tunnel when inspection is
// on (or the two plain streams of a proxied http:// request): both directions are parsed
// as HTTP/1.1 (http/message_parser.hpp), every message goes through the Inspector, and raw
// bytes are forwarded unchanged once allowed.
//
// Holding: a message's head and body are held (up to hold_bytes) until its verdict, so a
// block within that size gets a clean 403 block page. A longer body streams on, but its
// final bytes (those that complete the message) are held back until the final verdict; a
// late block then ends both connections so the receiver never has the complete message.
// See proxy-node/README.md, "Inspection".

#include "config/node_config.hpp"
#include "inspect/inspector.hpp"
#include "mgmt/metrics.hpp"
#include "tls/byte_stream.hpp"
#include "upstream/reason.hpp"

#include <asio/awaitable.hpp>

#include <cstdint>
#include <functional>
#include <string>

namespace proxy::inspect {

struct RelayOutcome {
    Reason reason = Reason::none;  // none: the relay ended normally
    std::string rule;              // for Reason::inspection
    std::string detail;            // for the log: direction, method, path (no query), note; never payload
    // "on": every byte went through the inspector; "partial": HTTP messages did, then the
    // connection became something else relayed uninspected (a WebSocket after its upgrade);
    // "off": nothing did (not HTTP, relayed by non_http = "tunnel").
    std::string inspection = "on";
    // A block page was sent and the client's side left open: it may still be sending (the
    // rest of a blocked upload), so the caller reads and drops that before closing.
    bool page_sent = false;
};

struct RelayParams {
    const InspectionSection& config;
    const Inspector& inspector;
    InspectionMetrics& metrics;
    std::size_t buffer_bytes;  // per direction
    std::string host;          // the intercepted server name (block page, inspector)
    std::uint64_t& bytes_client_to_upstream;
    std::uint64_t& bytes_upstream_to_client;
    std::function<void()> activity;  // called on every read (idle deadline)
};

// `params` must outlive the relay (GCC 12 mishandles by-value coroutine parameters with
// destructors, so none are taken by value).
asio::awaitable<RelayOutcome> inspecting_relay(tls::ByteStream& client, tls::ByteStream& upstream,
                                               const RelayParams& params);

}  // namespace proxy::inspect
