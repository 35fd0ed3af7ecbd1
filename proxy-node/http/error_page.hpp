#pragma once
// The HTTP answers the proxy itself gives: error pages that say what was wrong, with the
// stable reason code in a header and in the body, and the CONNECT acknowledgement.

#include "http/page.hpp"
#include "upstream/reason.hpp"

#include <string>
#include <utility>
#include <vector>
#include <string_view>

namespace proxy::http {

inline constexpr std::string_view kConnectEstablished = "HTTP/1.1 200 Connection established\r\n\r\n";
inline constexpr std::string_view kReasonHeader = "X-Proxy-Error";

int status_for(Reason reason);

// An HTTP/1.1 response for `page`: its headers, Connection: close and Content-Length.
std::string http1_response(const Page& page);

// The error page: HTML naming the host and reason, status by status_for().
Page error_page(Reason reason, std::string_view host, std::string_view detail);
// A complete HTTP/1.1 response (Connection: close), HTML body naming the host and reason.
std::string error_response(Reason reason, std::string_view host, std::string_view detail);

inline constexpr std::string_view kRuleHeader = "X-Proxy-Rule";
// The block page for content inspection: 403, names the host, the direction (download or
// upload) and the rule; Connection: close. `engine_unavailable`: blocked because an
// inspection engine could not decide (fail closed), which the page says instead of a match.
Page block_page(std::string_view host, std::string_view rule, bool upload, bool engine_unavailable = false);

}  // namespace proxy::http
