#pragma once
// JSON text written without building a tree, for hot paths (a leaf response per certificate,
// a log line per connection), where the tree costs more than the rest of the work. ASCII
// only: callers fall back to nlohmann for anything else, whose dump() this matches byte for
// byte.

#include <string>
#include <string_view>

namespace protocol::json_text {

// Appends `s` as a JSON string literal, escaped exactly as nlohmann's dump() escapes it;
// false (with `out` partly written) for a byte outside ASCII, which the caller's slow path
// handles.
bool append_ascii_string(std::string& out, std::string_view s);

}  // namespace protocol::json_text
