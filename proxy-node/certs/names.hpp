#pragma once
// Host names as the proxy compares and requests them.

#include <string>
#include <string_view>

namespace proxy {

// Lower-cases a DNS name and drops a trailing dot; IP literals are returned unchanged.
std::string normalise_name(std::string_view name);
bool is_ip_literal(std::string_view name);
// A plausible DNS name for a certificate request: LDH labels, optional leading "*." over at
// least two further labels, no trailing dot, at least two labels. The ca-service applies
// the real policy (public suffixes, allow/deny lists); this only keeps junk from being sent.
bool plausible_dns_name(std::string_view name);

}  // namespace proxy
