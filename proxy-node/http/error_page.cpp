#include "http/error_page.hpp"

namespace proxy::http {

namespace {

std::string html_escape(std::string_view in) {
    std::string out;
    for (char c : in) {
        switch (c) {
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '&': out += "&amp;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&#39;"; break;
            default:
                if (static_cast<unsigned char>(c) < 0x20 && c != '\t') out += '?';
                else out += c;
        }
    }
    return out;
}

std::string_view status_text(int status) {
    switch (status) {
        case 400: return "Bad Request";
        case 403: return "Forbidden";
        case 405: return "Method Not Allowed";
        case 429: return "Too Many Requests";
        case 431: return "Request Header Fields Too Large";
        case 502: return "Bad Gateway";
        case 503: return "Service Unavailable";
        case 504: return "Gateway Timeout";
        default: return "Error";
    }
}

}  // namespace

int status_for(Reason r) {
    switch (r) {
        case Reason::malformed_request: return 400;
        case Reason::method_not_allowed: return 405;
        case Reason::request_too_large: return 431;
        case Reason::timeout: return 504;
        case Reason::client_connection_limit: return 429;
        case Reason::ca_unavailable:
        case Reason::overloaded:
        case Reason::shutting_down: return 503;
        case Reason::certificate_refused:
        case Reason::not_tls:
        case Reason::not_http:
        case Reason::destination_not_allowed:
        case Reason::inspection: return 403;
        default: return 502;
    }
}

std::string error_response(Reason reason, std::string_view host, std::string_view detail) {
    const int status = status_for(reason);
    std::string body = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Connection refused by the proxy"
                       "</title></head>\n<body>\n<h1>The proxy did not connect you to " +
                       html_escape(host) + "</h1>\n<p>" + std::string(describe(reason)) + "</p>\n<p>Reason: <code>" +
                       std::string(code(reason)) + "</code></p>\n";
    if (!detail.empty()) body += "<p>Details: " + html_escape(detail) + "</p>\n";
    body += "<p>No content from the server was passed on. This event has been logged.</p>\n</body></html>\n";
    std::string head = "HTTP/1.1 " + std::to_string(status) + " " + std::string(status_text(status)) + "\r\n";
    head += "Content-Type: text/html; charset=utf-8\r\nCache-Control: no-store\r\nConnection: close\r\n";
    head += std::string(kReasonHeader) + ": " + std::string(code(reason)) + "\r\n";
    head += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
    return head + body;
}

}  // namespace proxy::http

namespace proxy::http {

std::string block_response(std::string_view host, std::string_view rule, bool upload, bool engine_unavailable) {
    const std::string why = engine_unavailable
                                ? " was blocked because the content inspection engine is unavailable, so its content "
                                  "could not be checked (rule <code>" + html_escape(rule) + "</code>). Try again later."
                                : " was blocked because its content matched the rule <code>" + html_escape(rule) +
                                      "</code>.";
    std::string body = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Blocked by content inspection"
                       "</title></head>\n<body>\n<h1>Blocked by content inspection</h1>\n<p>" +
                       std::string(upload ? "Your upload to " : "The download from ") + html_escape(host) + why +
                       "</p>\n<p>Reason: <code>" + std::string(code(Reason::inspection)) +
                       "</code></p>\n<p>" + (upload ? "The server did not receive it." : "Nothing of it was passed on.") +
                       " This event has been logged. If you believe this is a mistake, contact your administrator "
                       "and quote the rule name.</p>\n</body></html>\n";
    std::string head = "HTTP/1.1 403 Forbidden\r\nContent-Type: text/html; charset=utf-8\r\nCache-Control: no-store\r\n"
                       "Connection: close\r\n";
    head += std::string(kReasonHeader) + ": " + std::string(code(Reason::inspection)) + "\r\n";
    head += std::string(kRuleHeader) + ": " + std::string(rule) + "\r\n";
    head += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
    return head + body;
}

}  // namespace proxy::http
