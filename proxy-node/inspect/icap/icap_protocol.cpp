#include "inspect/icap/icap_protocol.hpp"

#include "http/text.hpp"

#include <algorithm>
#include <charconv>
#include <stdexcept>

namespace proxy::icap {

namespace {

bool is_tchar(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

std::vector<std::string> split_list(std::string_view v) {
    std::vector<std::string> out;
    while (!v.empty()) {
        const auto comma = v.find(',');
        const auto item = http::trim_ows(v.substr(0, comma));
        if (!item.empty()) {
            std::string s(item);
            std::transform(s.begin(), s.end(), s.begin(), [](char c) { return http::ascii_lower(c); });
            out.push_back(std::move(s));
        }
        if (comma == std::string_view::npos) break;
        v.remove_prefix(comma + 1);
    }
    return out;
}

bool listed(const std::vector<std::string>& list, std::string_view ext) {
    for (const auto& e : list)
        if (e == "*" || e == ext) return true;
    return false;
}

template <class T>
bool parse_number(std::string_view s, T& out, int base = 10) {
    if (s.empty()) return false;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out, base);
    return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

std::string ServiceUrl::authority() const {
    const bool v6 = host.find(':') != std::string::npos;
    return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

ServiceUrl parse_service_url(std::string_view url) {
    ServiceUrl u;
    u.text = std::string(url);
    std::string_view rest;
    if (url.starts_with("icap://")) {
        rest = url.substr(7);
    } else if (url.starts_with("icaps://")) {
        u.tls = true;
        u.port = 11344;
        rest = url.substr(8);
    } else {
        throw std::invalid_argument("'" + u.text + "' is not an ICAP URL (icap://host:port/service or icaps://...)");
    }
    const auto slash = rest.find('/');
    if (slash == std::string_view::npos || slash + 1 == rest.size())
        throw std::invalid_argument("'" + u.text + "' names no service (icap://host:port/service)");
    std::string_view authority = rest.substr(0, slash);
    u.service = std::string(rest.substr(slash));
    for (char c : u.service)
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
            throw std::invalid_argument("'" + u.text + "': the service path has spaces or control characters");
    std::string_view port;
    if (authority.starts_with("[")) {
        const auto close = authority.find(']');
        if (close == std::string_view::npos) throw std::invalid_argument("'" + u.text + "': unclosed '[' in the host");
        u.host = std::string(authority.substr(1, close - 1));
        const auto after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') throw std::invalid_argument("'" + u.text + "': junk after the host");
            port = after.substr(1);
        }
    } else {
        const auto colon = authority.rfind(':');
        u.host = std::string(authority.substr(0, colon));
        if (colon != std::string_view::npos) port = authority.substr(colon + 1);
        if (colon != std::string_view::npos && port.empty())
            throw std::invalid_argument("'" + u.text + "': empty port");
    }
    if (u.host.empty()) throw std::invalid_argument("'" + u.text + "' has no host");
    if (!port.empty()) {
        unsigned p = 0;
        if (!parse_number(port, p) || p == 0 || p > 65535)
            throw std::invalid_argument("'" + u.text + "': port must be 1-65535");
        u.port = static_cast<std::uint16_t>(p);
    }
    return u;
}

std::optional<std::string_view> Head::header(std::string_view name) const {
    for (const auto& [k, v] : headers)
        if (http::iequals(k, name)) return std::string_view(v);
    return std::nullopt;
}

std::optional<Head> parse_head(std::string_view buf, std::size_t& consumed, std::size_t limit) {
    if (!buf.substr(0, 5).empty() && !std::string_view("ICAP/").starts_with(buf.substr(0, 5)))
        throw std::runtime_error("not an ICAP answer (it starts with something other than ICAP/1.0)");
    const auto end = buf.find("\r\n\r\n");
    if (end == std::string_view::npos) {
        if (buf.size() > limit) throw std::runtime_error("ICAP head longer than " + std::to_string(limit) + " bytes");
        return std::nullopt;
    }
    if (end + 4 > limit) throw std::runtime_error("ICAP head longer than " + std::to_string(limit) + " bytes");
    consumed = end + 4;
    std::string_view text = buf.substr(0, end + 2);
    auto line_end = text.find("\r\n");
    const std::string_view status_line = text.substr(0, line_end);
    text.remove_prefix(line_end + 2);
    // ICAP/1.0 SP 3DIGIT SP reason
    if (!status_line.starts_with("ICAP/1.0 ") || status_line.size() < 12 || (status_line.size() > 12 && status_line[12] != ' '))
        throw std::runtime_error("malformed ICAP status line: '" + std::string(status_line.substr(0, 80)) + "'");
    Head h;
    if (!parse_number(status_line.substr(9, 3), h.status) || h.status < 100 || h.status > 599)
        throw std::runtime_error("malformed ICAP status code: '" + std::string(status_line.substr(0, 80)) + "'");
    if (status_line.size() > 13) h.reason = std::string(status_line.substr(13));
    while (!text.empty()) {
        line_end = text.find("\r\n");
        const std::string_view line = text.substr(0, line_end);
        text.remove_prefix(line_end + 2);
        if (!line.empty() && (line.front() == ' ' || line.front() == '\t')) {
            // A folded continuation line (c-icap's X-Violations-Found lists each violation so).
            if (h.headers.empty()) throw std::runtime_error("ICAP head starts with a continuation line");
            auto& value = h.headers.back().second;
            if (value.size() < 4096) value += " " + std::string(http::trim_ows(line));
            continue;
        }
        const auto colon = line.find(':');
        if (colon == 0 || colon == std::string_view::npos ||
            !std::all_of(line.begin(), line.begin() + static_cast<std::ptrdiff_t>(colon), is_tchar))
            throw std::runtime_error("malformed ICAP header field: '" + std::string(line.substr(0, 80)) + "'");
        if (h.headers.size() >= 100) throw std::runtime_error("more than 100 ICAP header fields");
        h.headers.emplace_back(std::string(line.substr(0, colon)), std::string(http::trim_ows(line.substr(colon + 1))));
    }
    return h;
}

std::vector<Section> parse_encapsulated(std::string_view value) {
    static constexpr std::string_view kNames[] = {"req-hdr", "res-hdr", "req-body", "res-body", "null-body", "opt-body"};
    std::vector<Section> out;
    for (const auto& item : split_list(value)) {
        const auto eq = item.find('=');
        if (eq == std::string::npos) throw std::runtime_error("Encapsulated: '" + item + "' has no offset");
        Section s{item.substr(0, eq), 0};
        if (std::find(std::begin(kNames), std::end(kNames), s.name) == std::end(kNames))
            throw std::runtime_error("Encapsulated: unknown section '" + s.name + "'");
        if (!parse_number(std::string_view(item).substr(eq + 1), s.offset))
            throw std::runtime_error("Encapsulated: '" + item + "' has no valid offset");
        if (!out.empty() && s.offset < out.back().offset)
            throw std::runtime_error("Encapsulated: offsets are not increasing");
        if (!out.empty() && out.back().name.ends_with("body"))
            throw std::runtime_error("Encapsulated: a body section is not the last one");
        out.push_back(std::move(s));
    }
    if (out.empty() || !out.back().name.ends_with("body"))
        throw std::runtime_error("Encapsulated: no body section (req-body, res-body or null-body)");
    if (out.size() > 3) throw std::runtime_error("Encapsulated: too many sections");
    if (out.front().offset != 0) throw std::runtime_error("Encapsulated: the first section is not at offset 0");
    return out;
}

bool Options::supports(std::string_view method) const {
    for (const auto& m : methods)
        if (http::iequals(m, method)) return true;
    return false;
}

Options::Transfer Options::transfer_for(std::string_view extension) const {
    if (!extension.empty()) {
        // Specific extensions win over "*" (RFC 3507 4.10.2: one list may hold "*").
        for (const auto* list : {&transfer_ignore, &transfer_complete, &transfer_preview})
            if (std::find(list->begin(), list->end(), extension) != list->end())
                return list == &transfer_ignore ? Transfer::ignore
                       : list == &transfer_complete ? Transfer::complete
                                                    : Transfer::preview;
    }
    if (listed(transfer_ignore, "*") && !listed(transfer_preview, extension) ) return Transfer::ignore;
    if (listed(transfer_complete, "*")) return Transfer::complete;
    return Transfer::preview;
}

Options parse_options(const Head& head) {
    if (head.status != 200)
        throw std::runtime_error("OPTIONS answered " + std::to_string(head.status) + " " + head.reason);
    Options o;
    const auto methods = head.header("Methods");
    if (!methods) throw std::runtime_error("OPTIONS answer has no Methods field");
    for (auto m : split_list(*methods)) {
        std::transform(m.begin(), m.end(), m.begin(), [](char c) { return static_cast<char>(std::toupper(c)); });
        o.methods.push_back(std::move(m));
    }
    const auto istag = head.header("ISTag");
    if (!istag || istag->empty()) throw std::runtime_error("OPTIONS answer has no ISTag field");
    o.istag = std::string(*istag);
    if (o.istag.size() > 2 && o.istag.front() == '"' && o.istag.back() == '"') o.istag = o.istag.substr(1, o.istag.size() - 2);
    if (o.istag.size() > 64) o.istag.resize(64);
    if (auto p = head.header("Preview")) {
        std::size_t n = 0;
        if (!parse_number(*p, n)) throw std::runtime_error("OPTIONS: Preview '" + std::string(*p) + "' is not a number");
        o.preview = std::min<std::size_t>(n, 1 << 20);
    }
    if (auto v = head.header("Transfer-Preview")) o.transfer_preview = split_list(*v);
    if (auto v = head.header("Transfer-Ignore")) o.transfer_ignore = split_list(*v);
    if (auto v = head.header("Transfer-Complete")) o.transfer_complete = split_list(*v);
    if (auto v = head.header("Max-Connections")) {
        unsigned n = 0;
        if (!parse_number(*v, n) || n == 0) throw std::runtime_error("OPTIONS: Max-Connections '" + std::string(*v) + "' is not a positive number");
        o.max_connections = n;
    }
    if (auto v = head.header("Allow")) o.allow_204 = listed(split_list(*v), "204");
    if (auto v = head.header("Options-TTL")) {
        unsigned long n = 0;
        if (!parse_number(*v, n)) throw std::runtime_error("OPTIONS: Options-TTL '" + std::string(*v) + "' is not a number");
        o.ttl = std::chrono::seconds(n);
    }
    return o;
}

std::string target_extension(std::string_view target) {
    if (const auto q = target.find_first_of("?#"); q != std::string_view::npos) target = target.substr(0, q);
    if (const auto scheme = target.find("://"); scheme != std::string_view::npos) {
        target.remove_prefix(scheme + 3);
        const auto path = target.find('/');
        target = path == std::string_view::npos ? std::string_view() : target.substr(path);
    }
    const auto slash = target.rfind('/');
    const std::string_view file = slash == std::string_view::npos ? target : target.substr(slash + 1);
    const auto dot = file.rfind('.');
    if (dot == std::string_view::npos || dot + 1 == file.size() || file.size() - dot > 16) return {};
    std::string ext(file.substr(dot + 1));
    std::transform(ext.begin(), ext.end(), ext.begin(), [](char c) { return http::ascii_lower(c); });
    return ext;
}

void append_chunk(std::string& out, std::span<const std::uint8_t> bytes) {
    if (bytes.empty()) return;
    char size[24];
    auto [p, ec] = std::to_chars(size, size + sizeof size, bytes.size(), 16);
    out.append(size, p);
    out += "\r\n";
    out.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    out += "\r\n";
}

std::size_t ChunkDecoder::feed(std::string_view in, std::string* out) {
    std::size_t used = 0;
    while (used < in.size() && state_ != State::done) {
        const std::string_view rest = in.substr(used);
        switch (state_) {
        case State::size_line:
        case State::trailer: {
            const auto nl = rest.find('\n');
            const std::size_t take = nl == std::string_view::npos ? rest.size() : nl + 1;
            if (line_.size() + take > line_limit_) throw std::runtime_error("chunk line longer than " + std::to_string(line_limit_) + " bytes");
            line_.append(rest.substr(0, take));
            used += take;
            if (nl == std::string_view::npos) break;
            if (line_.size() < 2 || line_[line_.size() - 2] != '\r') throw std::runtime_error("chunk line not ended by CRLF");
            std::string_view line(line_.data(), line_.size() - 2);
            if (state_ == State::trailer) {
                if (line.empty()) state_ = State::done;
                line_.clear();
                break;
            }
            const auto ext = line.find(';');
            const auto digits = http::trim_ows(line.substr(0, ext));
            std::uint64_t size = 0;
            if (digits.size() > 15 || !parse_number(digits, size, 16))
                throw std::runtime_error("bad chunk size '" + std::string(line.substr(0, 40)) + "'");
            line_.clear();
            if (size == 0) {
                state_ = State::trailer;
            } else {
                remaining_ = size;
                state_ = State::data;
            }
            break;
        }
        case State::data: {
            const std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, rest.size()));
            if (out != nullptr) out->append(rest.substr(0, take));
            decoded_ += take;
            remaining_ -= take;
            used += take;
            if (remaining_ == 0) state_ = State::data_crlf;
            break;
        }
        case State::data_crlf: {
            line_ += rest.front();
            ++used;
            if (line_.size() == 2) {
                if (line_ != "\r\n") throw std::runtime_error("chunk data not followed by CRLF");
                line_.clear();
                state_ = State::size_line;
            }
            break;
        }
        case State::done:
            break;
        }
    }
    return used;
}

}  // namespace proxy::icap
