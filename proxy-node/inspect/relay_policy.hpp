#pragma once
// What the inspecting relays (HTTP/1.1 and WebSocket in inspect/inspecting_relay, HTTP/2 in
// h2/) decide alike: how an engine failure is acted on, which messages stream instead of
// being held, and how a request target appears in logs.

#include "config/node_config.hpp"
#include "http/page.hpp"
#include "inspect/inspector.hpp"

#include <string>
#include <string_view>

namespace proxy::inspect {

// What a relay acts on: an engine failure that reaches it (no EngineChain mapped it by a
// policy) blocks, fail closed, with rule engine_unavailable.
Verdict fail_closed(Verdict v);

// A modified request (Verdict::rewrite) that the relay can no longer send in place of the
// client's (`why`: part of the client's request already went upstream, say): a block by
// the engine that modified it, fail closed, never the client's request unmodified.
Verdict refuse_rewrite(const Verdict& v, std::string_view why);

// The page a client gets for a block: the engine's own (an ICAP service's) when it gave
// one, else the node's block page for `host` (saying the engine is unavailable when that
// is why). `upload`: the request was blocked.
http::Page block_page_for(std::string_view host, const Verdict& v, bool upload);

// The media type of `content_type` (before any parameter) is one of inspection.stream_types:
// a stream by design (server-sent events and the like) that is never held.
bool is_stream_type(const InspectionSection& config, std::string_view content_type);

// A request target for a log line: the path without its query or fragment, cut to 200
// characters.
std::string loggable_path(std::string_view target);

}  // namespace proxy::inspect
