#pragma once
// Internal: the JSON reader every decoder goes through, so the contract's limits (size,
// depth, duplicate keys) hold for every message, not just the ones someone remembered.

#include "protocol/errors.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <string>
#include <string_view>

namespace protocol::detail {

// Parses body as one JSON object. Refuses bodies over max_bytes (body_too_large, before
// parsing), invalid JSON (malformed_request, with the byte position), nesting deeper than
// kMaxJsonDepth, keys repeated within an object and a top level that is not an object.
Decoded<nlohmann::json> parse_object(std::string_view body, std::size_t max_bytes);

// Client-supplied text made safe to quote in a message: control and non-ASCII bytes
// escaped as \xNN, cut after a bounded length.

// Human name of a JSON value's type for "expected X, got Y" messages.
std::string_view type_name(const nlohmann::json& value);

// The encoder all writers use: never throws on invalid UTF-8 (replaces it instead).
std::string dump(const nlohmann::json& value);

}  // namespace protocol::detail
