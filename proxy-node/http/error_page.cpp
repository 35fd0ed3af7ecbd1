#include "http/error_page.hpp"

#include "http/text.hpp"

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

std::string lower_name(std::string_view name) {
    std::string out(name);
    for (char& c : out) c = ascii_lower(c);
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

std::string http1_response(const Page& page) {
    std::string head = "HTTP/1.1 " + std::to_string(page.status) + " " + std::string(status_text(page.status)) + "\r\n";
    for (const auto& [name, value] : page.headers) {
        std::string shown = name;
        // Conventional capitalisation on HTTP/1.1 (x-proxy-error -> X-Proxy-Error).
        bool start = true;
        for (char& c : shown) {
            if (start && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
            start = c == '-';
        }
        head += shown + ": " + value + "\r\n";
    }
    head += "Connection: close\r\nContent-Length: " + std::to_string(page.body.size()) + "\r\n\r\n";
    return head + page.body;
}

Page error_page(Reason reason, std::string_view host, std::string_view detail) {
    Page page;
    page.status = status_for(reason);
    page.body = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Connection refused by the proxy"
                "</title></head>\n<body>\n<h1>The proxy did not connect you to " +
                html_escape(host) + "</h1>\n<p>" + std::string(describe(reason)) + "</p>\n<p>Reason: <code>" +
                std::string(code(reason)) + "</code></p>\n";
    if (!detail.empty()) page.body += "<p>Details: " + html_escape(detail) + "</p>\n";
    page.body += "<p>No content from the server was passed on. This event has been logged.</p>\n</body></html>\n";
    page.headers = {{"content-type", "text/html; charset=utf-8"},
                    {"cache-control", "no-store"},
                    {lower_name(kReasonHeader), std::string(code(reason))}};
    return page;
}

std::string error_response(Reason reason, std::string_view host, std::string_view detail) {
    return http1_response(error_page(reason, host, detail));
}

Page block_page(std::string_view host, std::string_view rule, bool upload, bool engine_unavailable) {
    const std::string why = engine_unavailable
                                ? " was blocked because the content inspection engine is unavailable, so its content "
                                  "could not be checked (rule <code>" + html_escape(rule) + "</code>). Try again later."
                                : " was blocked because its content matched the rule <code>" + html_escape(rule) +
                                      "</code>.";
    Page page;
    page.status = 403;
    page.body = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Blocked by content inspection"
                "</title></head>\n<body>\n<h1>Blocked by content inspection</h1>\n<p>" +
                std::string(upload ? "Your upload to " : "The download from ") + html_escape(host) + why +
                "</p>\n<p>Reason: <code>" + std::string(code(Reason::inspection)) + "</code></p>\n<p>" +
                (upload ? "The server did not receive it." : "Nothing of it was passed on.") +
                " This event has been logged. If you believe this is a mistake, contact your administrator "
                "and quote the rule name.</p>\n</body></html>\n";
    page.headers = {{"content-type", "text/html; charset=utf-8"},
                    {"cache-control", "no-store"},
                    {lower_name(kReasonHeader), std::string(code(Reason::inspection))},
                    {lower_name(kRuleHeader), std::string(rule)}};
    return page;
}

}  // namespace proxy::http
