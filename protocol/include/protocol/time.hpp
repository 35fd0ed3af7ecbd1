#pragma once
// Timestamps on the wire: RFC 3339 in UTC with whole seconds, "2024-05-01T12:00:00Z".

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace protocol {

// Truncates to whole seconds.
std::string rfc3339(std::chrono::system_clock::time_point t);
// Accepts exactly the form rfc3339() writes, within system_clock's range; nullopt otherwise.
std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view text);

}  // namespace protocol
