#include "mail/smtp_protocol.hpp"

#include "http/text.hpp"

#include <algorithm>
#include <charconv>
#include <cctype>

namespace proxy::mail {

namespace {

std::string upper(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
}

std::string_view first_word(std::string_view s) { return s.substr(0, s.find(' ')); }

std::optional<std::uint64_t> number(std::string_view s) {
    std::uint64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
    return v;
}

}  // namespace

Command parse_command(std::string_view line) {
    Command c;
    const auto sp = line.find(' ');
    c.verb = upper(line.substr(0, sp));
    if (sp != std::string_view::npos) c.args = std::string(line.substr(sp + 1));
    return c;
}

std::string Reply::wire() const {
    std::string out;
    const std::string c = std::to_string(code);
    if (lines.empty()) return c + "\r\n";
    for (std::size_t i = 0; i < lines.size(); ++i) {
        out += c;
        out += i + 1 < lines.size() ? '-' : ' ';
        out += lines[i];
        out += "\r\n";
    }
    return out;
}

Reply make_reply(int code, std::string_view text) {
    Reply r;
    r.code = code;
    r.lines.emplace_back(text);
    return r;
}

bool ReplyReader::feed(std::string_view line) {
    if (!error_.empty()) return false;
    const bool digits = line.size() >= 3 && std::all_of(line.begin(), line.begin() + 3, [](char c) {
                            return c >= '0' && c <= '9';
                        });
    if (!digits || line[0] < '2' || line[0] > '5' || (line.size() > 3 && line[3] != ' ' && line[3] != '-')) {
        error_ = "not an SMTP reply line";
        return false;
    }
    const int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (reply_.code != 0 && reply_.code != code) {
        error_ = "a multi-line reply changed its code";
        return false;
    }
    reply_.code = code;
    reply_.lines.emplace_back(line.size() > 4 ? line.substr(4) : std::string_view());
    return line.size() <= 3 || line[3] == ' ';
}

Reply ReplyReader::take() {
    Reply out = std::move(reply_);
    reply_ = {};
    return out;
}

Extensions parse_extensions(const Reply& ehlo) {
    Extensions e;
    for (std::size_t i = 1; i < ehlo.lines.size(); ++i) {
        const std::string_view line = ehlo.lines[i];
        const std::string word = upper(first_word(line));
        if (word == "STARTTLS") e.starttls = true;
        else if (word == "CHUNKING") e.chunking = true;
        else if (word == "PIPELINING") e.pipelining = true;
        else if (word == "SIZE") {
            const auto sp = line.find(' ');
            e.size = sp == std::string_view::npos ? std::optional<std::uint64_t>(0) : number(line.substr(sp + 1));
            if (!e.size) e.size = 0;
        }
    }
    return e;
}

Reply client_ehlo_reply(const Reply& server, const ClientOffer& offer) {
    Reply out;
    out.code = 250;
    out.lines.push_back(server.lines.empty() ? std::string() : server.lines.front());
    const Extensions ext = parse_extensions(server);
    for (std::size_t i = 1; i < server.lines.size(); ++i) {
        const std::string word = upper(first_word(server.lines[i]));
        if (word == "STARTTLS" || word == "BINARYMIME" || word == "SIZE") continue;
        out.lines.push_back(server.lines[i]);
    }
    std::uint64_t size = offer.max_message_bytes;
    if (ext.size && *ext.size > 0) size = std::min(size, *ext.size);
    out.lines.push_back("SIZE " + std::to_string(size));
    if (offer.starttls) out.lines.emplace_back("STARTTLS");
    return out;
}

void DataReader::put(char c) {
    ++size_;
    if (size_ <= max_) content_.push_back(c);
    else over_ = true;
}

void DataReader::end_line() {
    put('\r');
    put('\n');
}

std::size_t DataReader::take(std::span<const std::uint8_t> in) {
    std::size_t i = 0;
    while (i < in.size() && state_ != State::done) {
        const char c = static_cast<char>(in[i]);
        bool consumed = true;
        switch (state_) {
            case State::line_start:
                if (c == '.') state_ = State::dot;
                else {
                    state_ = State::in_line;
                    consumed = false;
                }
                break;
            case State::dot:  // a line that starts with a dot: the dot is stuffing
                if (c == '\r') state_ = State::dot_cr;
                else {
                    state_ = State::in_line;
                    consumed = false;
                }
                break;
            case State::dot_cr:
                if (c == '\n') state_ = State::done;  // <CRLF>.<CRLF>
                else {
                    end_line();  // ".<CR>x": a bare CR after the stuffing dot
                    state_ = State::in_line;  // after a bare CR: no stuffing, no end of data
                    consumed = false;
                }
                break;
            case State::in_line:
                if (c == '\r') state_ = State::cr;
                else if (c == '\n') {
                    end_line();  // bare LF
                    state_ = State::in_line;  // a dot after it is content: "<LF>.<CRLF>" is no end of data
                } else put(c);
                break;
            case State::cr:
                end_line();
                if (c == '\n') state_ = State::line_start;
                else {
                    state_ = State::in_line;  // bare CR: "<CR>.<CRLF>" is no end of data
                    consumed = false;
                }
                break;
            case State::done: break;
        }
        if (consumed) ++i;
    }
    return i;
}

std::string stuffed(std::string_view content) {
    std::string out;
    out.reserve(content.size() + content.size() / 64 + 8);
    bool line_start = true;
    for (std::size_t i = 0; i < content.size(); ++i) {
        const char c = content[i];
        if (c == '\r' || c == '\n') {
            if (c == '\r' && i + 1 < content.size() && content[i + 1] == '\n') ++i;
            out += "\r\n";
            line_start = true;
            continue;
        }
        if (line_start && c == '.') out.push_back('.');
        line_start = false;
        out.push_back(c);
    }
    if (!line_start) out += "\r\n";
    out += ".\r\n";
    return out;
}

std::optional<Bdat> parse_bdat(std::string_view args) {
    Bdat b;
    const auto sp = args.find(' ');
    const auto size = number(args.substr(0, sp));
    if (!size) return std::nullopt;
    b.size = *size;
    if (sp != std::string_view::npos) {
        if (!http::iequals(args.substr(sp + 1), "LAST")) return std::nullopt;
        b.last = true;
    }
    return b;
}

std::optional<std::string> path_of(std::string_view args) {
    const auto open = args.find('<');
    if (open == std::string_view::npos) return std::nullopt;
    const auto close = args.find('>', open);
    if (close == std::string_view::npos) return std::nullopt;
    return std::string(args.substr(open + 1, close - open - 1));
}

std::optional<std::uint64_t> declared_size(std::string_view args) {
    const std::string u = upper(args);
    const auto at = u.find(" SIZE=");
    if (at == std::string::npos) return std::nullopt;
    const auto start = at + 6;
    const auto end = u.find(' ', start);
    return number(std::string_view(u).substr(start, end == std::string::npos ? std::string::npos : end - start));
}

}  // namespace proxy::mail
