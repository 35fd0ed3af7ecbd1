#pragma once
// HTTP/2 under inspection (RFC 9113, libnghttp2): when the upstream selected h2, the node
// runs an h2 server session towards the client and an h2 client session towards the
// upstream, over the two decrypted streams of one intercepted tunnel (the upstream
// connection is this client connection's alone, never shared). Each client stream is
// mapped to one upstream stream; its request and its response are messages for the same
// Inspector as HTTP/1.1 (inspect/inspector.hpp, Carrier::http2), decoded bodies, with the
// same hold/stream policy:
//   - a message's head and body are held until its verdict, up to inspection.hold_bytes
//     (a stream type, or a request that expects 100-continue, goes at once); past that it
//     streams, and its end (END_STREAM, trailers) waits for the final verdict;
//   - a block before the response started: the 403 block page on that stream, the
//     upstream stream reset (CANCEL); after: the client stream is reset (INTERNAL_ERROR),
//     so the client never has the complete message. Sibling streams carry on.
//
// Bounded per stream and per connection: at most 100 concurrent client streams, a decoded
// header list of inspection.head_bytes, flow-control windows only just above hold_bytes (a body is taken from the
// sender only as fast as the receiver takes it), and a per-connection budget for held
// bodies. Abuse ends the connection with GOAWAY (ENHANCE_YOUR_CALM), Reason http2_flood:
// rapid reset (CVE-2023-44487, nghttp2's RST_STREAM rate limit), CONTINUATION floods
// (nghttp2's limit), HPACK bombs (the decoded header list is counted), PING / SETTINGS /
// PRIORITY / empty-DATA floods (a token bucket); a zero-window stall costs no more than the
// windows and ends at the idle timeout, which only real progress (headers, data) renews.
// Server push is off. See proxy-node/README.md, "HTTP/2".

#include "inspect/inspecting_relay.hpp"

#include <asio/awaitable.hpp>

namespace proxy::h2 {

// The ALPN protocol id.
inline constexpr std::string_view kAlpnH2 = "h2";

// `params` must outlive the relay. The outcome's detail counts the connection's streams,
// blocks and resets; `params.metrics` counts them for /metrics.
asio::awaitable<inspect::RelayOutcome> h2_relay(tls::ByteStream& client, tls::ByteStream& upstream,
                                                const inspect::RelayParams& params);

}  // namespace proxy::h2
