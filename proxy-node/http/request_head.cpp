#include "http/request_head.hpp"

#include "http/text.hpp"

#include "tls/tls_stream.hpp"

#include <asio/read.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <span>

namespace proxy::http {

namespace {

constexpr std::string_view kHeadEnd = "\r\n\r\n";
constexpr std::size_t kMaxHostLength = 253;

bool is_tchar(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool valid_reg_name(std::string_view h) {
    if (h.empty() || h.size() > kMaxHostLength) return false;
    return std::all_of(h.begin(), h.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
    });
}

}  // namespace

std::optional<std::string> RequestHead::header(std::string_view name) const {
    for (const auto& [k, v] : headers)
        if (iequals(k, name)) return v;
    return std::nullopt;
}

asio::awaitable<HeadStatus> read_request_head(asio::ip::tcp::socket& socket, std::size_t max_bytes, std::string& head) {
    // Not zero-filled (it is peeked into before any byte is looked at).
    auto storage = std::make_unique_for_overwrite<std::uint8_t[]>(max_bytes);
    const std::span<std::uint8_t> buf(storage.get(), max_bytes);
    std::size_t have = 0;
    for (;;) {
        have = co_await tls::peek_more(socket, buf, have);
        if (have == 0) co_return HeadStatus::closed;
        std::string_view seen(reinterpret_cast<const char*>(buf.data()), have);
        auto end = seen.find(kHeadEnd);
        if (end != std::string_view::npos) {
            head.assign(seen.substr(0, end + kHeadEnd.size()));
            asio::error_code ec;
            co_await asio::async_read(socket, asio::buffer(buf.data(), head.size()),
                                      asio::redirect_error(asio::use_awaitable, ec));
            co_return ec ? HeadStatus::closed : HeadStatus::ok;
        }
        if (have >= max_bytes) co_return HeadStatus::too_large;
    }
}

std::optional<RequestHead> parse_request_head(std::string_view text) {
    RequestHead h;
    auto eol = text.find("\r\n");
    if (eol == std::string_view::npos) return std::nullopt;
    std::string_view line = text.substr(0, eol);
    auto sp1 = line.find(' ');
    auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp1 == std::string_view::npos || sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos)
        return std::nullopt;
    h.method = line.substr(0, sp1);
    h.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    h.version = line.substr(sp2 + 1);
    if (h.method.empty() || !std::all_of(h.method.begin(), h.method.end(), is_tchar)) return std::nullopt;
    if (h.target.empty() || std::any_of(h.target.begin(), h.target.end(), [](char c) {
            return static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f;
        }))
        return std::nullopt;
    if (h.version != "HTTP/1.1" && h.version != "HTTP/1.0") return std::nullopt;
    std::size_t pos = eol + 2;
    while (pos < text.size()) {
        auto next = text.find("\r\n", pos);
        if (next == std::string_view::npos) return std::nullopt;
        std::string_view field = text.substr(pos, next - pos);
        pos = next + 2;
        if (field.empty()) break;  // the blank line ending the head
        auto colon = field.find(':');
        if (colon == 0 || colon == std::string_view::npos) return std::nullopt;
        std::string_view name = field.substr(0, colon);
        if (!std::all_of(name.begin(), name.end(), is_tchar)) return std::nullopt;  // also refuses obs-fold
        std::string_view value = field.substr(colon + 1);
        while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
        while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
        if (std::any_of(value.begin(), value.end(), [](char c) { return c == '\r' || c == '\n' || c == '\0'; }))
            return std::nullopt;
        h.headers.emplace_back(name, value);
    }
    return h;
}

std::optional<Authority> parse_authority(std::string_view text, std::optional<std::uint16_t> default_port) {
    Authority a;
    std::string_view host, port;
    if (!text.empty() && text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string_view::npos) return std::nullopt;
        host = text.substr(1, close - 1);
        std::string_view rest = text.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') return std::nullopt;
            port = rest.substr(1);
            if (port.empty()) return std::nullopt;
        }
        std::string h(host);
        unsigned char buf[16];
        if (::inet_pton(AF_INET6, h.c_str(), buf) != 1) return std::nullopt;
    } else {
        auto colon = text.rfind(':');
        if (colon != std::string_view::npos) {
            host = text.substr(0, colon);
            port = text.substr(colon + 1);
            if (port.empty()) return std::nullopt;
        } else {
            host = text;
        }
        if (!valid_reg_name(host)) return std::nullopt;
    }
    if (port.empty()) {
        if (!default_port) return std::nullopt;
        a.port = *default_port;
    } else {
        if (port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
            return std::nullopt;
        int p = std::stoi(std::string(port));
        if (p < 1 || p > 65535) return std::nullopt;
        a.port = static_cast<std::uint16_t>(p);
    }
    a.host = host;
    return a;
}

std::optional<AbsoluteUrl> parse_http_url(std::string_view text) {
    constexpr std::string_view kScheme = "http://";
    if (text.size() < kScheme.size() || !iequals(text.substr(0, kScheme.size()), kScheme)) return std::nullopt;
    text.remove_prefix(kScheme.size());
    auto slash = text.find_first_of("/?#");
    std::string_view authority = text.substr(0, slash);
    if (authority.find('@') != std::string_view::npos) return std::nullopt;  // no userinfo
    auto a = parse_authority(authority, 80);
    if (!a) return std::nullopt;
    AbsoluteUrl u{*a, slash == std::string_view::npos ? "/" : std::string(text.substr(slash))};
    if (u.path_and_query.front() == '#') return std::nullopt;
    if (u.path_and_query.front() == '?') u.path_and_query.insert(0, "/");
    if (auto hash = u.path_and_query.find('#'); hash != std::string::npos) u.path_and_query.resize(hash);
    return u;
}

}  // namespace proxy::http
