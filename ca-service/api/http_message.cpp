#include "api/http_message.hpp"

#include "ossl/encoding.hpp"

#include <algorithm>
#include <charconv>

namespace ca::http {

namespace {

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return (x >= 'A' && x <= 'Z' ? x + 32 : x) == (y >= 'A' && y <= 'Z' ? y + 32 : y);
           });
}

bool is_tchar(char c) {  // RFC 9110 token characters
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) { return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar); }

bool visible_or_space(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u == '\t' || (u >= 0x20 && u != 0x7f);
    });
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

bool has_token(std::string_view list, std::string_view token) {
    while (!list.empty()) {
        const auto comma = list.find(',');
        if (iequals(trim(list.substr(0, comma)), token)) return true;
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
    return false;
}

std::optional<std::string> percent_decode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '+') {
            out += ' ';
        } else if (s[i] == '%') {
            if (i + 2 >= s.size()) return std::nullopt;
            const int hi = ossl::hex_digit_value(s[i + 1]), lo = ossl::hex_digit_value(s[i + 2]);
            if (hi < 0 || lo < 0) return std::nullopt;
            out += static_cast<char>(hi * 16 + lo);
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}

const char* reason(int status) {
    switch (status) {
        case 200: return "OK";
        case 400: return "Bad Request";
        case 401: return "Unauthorized";
        case 403: return "Forbidden";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 408: return "Request Timeout";
        case 413: return "Payload Too Large";
        case 415: return "Unsupported Media Type";
        case 429: return "Too Many Requests";
        case 431: return "Request Header Fields Too Large";
        case 500: return "Internal Server Error";
        case 501: return "Not Implemented";
        case 503: return "Service Unavailable";
        case 505: return "HTTP Version Not Supported";
        default: return "Unknown";
    }
}

ParseResult bad(std::string problem) { return {ParseStatus::bad, 0, std::move(problem)}; }

}  // namespace

std::optional<std::string_view> Request::header(std::string_view name) const {
    for (const auto& [n, v] : headers)
        if (iequals(n, name)) return std::string_view(v);
    return std::nullopt;
}

std::optional<std::string> Request::query_param(std::string_view name) const {
    std::string_view q = query;
    while (!q.empty()) {
        const auto amp = q.find('&');
        const std::string_view pair = q.substr(0, amp);
        const auto eq = pair.find('=');
        auto key = percent_decode(pair.substr(0, eq));
        if (key && *key == name) return percent_decode(eq == std::string_view::npos ? "" : pair.substr(eq + 1));
        if (amp == std::string_view::npos) break;
        q.remove_prefix(amp + 1);
    }
    return std::nullopt;
}

ParseResult parse_head(std::string_view buffer, Request& out) {
    const std::size_t end = buffer.substr(0, kMaxHeadBytes).find("\r\n\r\n");
    if (end == std::string_view::npos) {
        if (buffer.size() >= kMaxHeadBytes)
            return bad("the request line and headers exceed " + std::to_string(kMaxHeadBytes) + " bytes");
        return {};
    }
    std::string_view head = buffer.substr(0, end + 2);  // every line ends with CRLF

    // Request line: method SP target SP version
    std::size_t eol = head.find("\r\n");
    const std::string_view line = head.substr(0, eol);
    head.remove_prefix(eol + 2);
    const auto sp1 = line.find(' ');
    const auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos)
        return bad("the request line must be METHOD TARGET HTTP/1.1");
    const std::string_view method = line.substr(0, sp1);
    const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    const std::string_view version = line.substr(sp2 + 1);
    if (!is_token(method)) return bad("the request method is not a token");
    if (target.empty() || target.front() != '/' ||
        !std::all_of(target.begin(), target.end(), [](char c) {
            const auto u = static_cast<unsigned char>(c);
            return u > 0x20 && u < 0x7f;
        }))
        return bad("the request target must be an absolute path of visible ASCII");
    if (version == "HTTP/1.1") out.http10 = false;
    else if (version == "HTTP/1.0") out.http10 = true;
    else return bad("only HTTP/1.1 and HTTP/1.0 are spoken here");
    out.method = method;
    const auto q = target.find('?');
    out.path = target.substr(0, q);
    out.query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);

    out.headers.clear();
    std::optional<std::size_t> length;
    bool keep_alive_10 = false;
    out.close = false;
    out.expect_continue = false;
    while (!head.empty()) {
        eol = head.find("\r\n");
        const std::string_view field = head.substr(0, eol);
        head.remove_prefix(eol + 2);
        if (out.headers.size() == kMaxHeaders)
            return bad("more than " + std::to_string(kMaxHeaders) + " header fields");
        const auto colon = field.find(':');
        if (colon == std::string_view::npos) return bad("a header line without a colon");
        const std::string_view name = field.substr(0, colon);
        const std::string_view value = trim(field.substr(colon + 1));
        if (!is_token(name)) return bad("a header name is not a token (line folding is not accepted)");
        if (!visible_or_space(value)) return bad("a header value holds control characters");
        if (iequals(name, "Content-Length")) {
            std::size_t n = 0;
            const auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
            if (value.empty() || ec != std::errc() || p != value.data() + value.size())
                return bad("Content-Length must be a decimal number");
            if (length && *length != n) return bad("conflicting Content-Length headers");
            length = n;
        } else if (iequals(name, "Transfer-Encoding")) {
            return bad("Transfer-Encoding is not accepted; send the body with a Content-Length");
        } else if (iequals(name, "Connection")) {
            if (has_token(value, "close")) out.close = true;
            if (has_token(value, "keep-alive")) keep_alive_10 = true;
        } else if (iequals(name, "Expect")) {
            if (!iequals(value, "100-continue")) return bad("the only Expect accepted is 100-continue");
            out.expect_continue = true;
        }
        out.headers.emplace_back(name, value);
    }
    if (out.http10 && !keep_alive_10) out.close = true;
    out.content_length = length.value_or(0);
    return {ParseStatus::complete, end + 4, {}};
}

std::string serialize(const Response& r, bool keep_alive) {
    std::string out;
    out.reserve(160 + r.body.size());
    out += "HTTP/1.1 ";
    out += std::to_string(r.status);
    out += ' ';
    out += reason(r.status);
    out += "\r\n";
    for (const auto& [n, v] : r.headers) {
        out += n;
        out += ": ";
        out += v;
        out += "\r\n";
    }
    if (!r.content_type.empty()) {
        out += "Content-Type: ";
        out += r.content_type;
        out += "\r\n";
    }
    out += "Content-Length: ";
    out += std::to_string(r.body.size());
    out += keep_alive ? "\r\nConnection: keep-alive\r\n\r\n" : "\r\nConnection: close\r\n\r\n";
    out += r.body;
    return out;
}

}  // namespace ca::http
