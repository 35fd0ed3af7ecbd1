#include "mail/mime.hpp"

#include "http/text.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <tuple>
#include <utility>

namespace proxy::mail {

namespace {

using http::ascii_lower;
using http::iequals;
using http::trim_ows;

constexpr auto npos = std::string_view::npos;

bool is_blank(char c) {
    return c == ' ' || c == '\t';
}

std::string lowercase(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), ascii_lower);
    return out;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// The line at `pos`, without its LF or CRLF, and where the next one starts.
struct Line {
    std::string_view text;
    std::size_t next;
};

Line line_at(std::string_view s, std::size_t pos) {
    const std::size_t lf = s.find('\n', pos);
    std::string_view text = s.substr(pos, (lf == npos ? s.size() : lf) - pos);
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    return {text, lf == npos ? s.size() : lf + 1};
}

// --- transfer encodings ---

std::string decode_base64(std::string_view in) {
    static constexpr auto alphabet = [] {
        std::array<std::int8_t, 256> t{};
        t.fill(-1);
        const std::string_view chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        for (std::size_t i = 0; i < chars.size(); ++i)
            t[static_cast<unsigned char>(chars[i])] = static_cast<std::int8_t>(i);
        return t;
    }();
    std::string out;
    out.reserve(in.size() / 4 * 3 + 2);
    std::uint32_t bits = 0;
    int sextets = 0;
    // An incomplete quantum yields its whole bytes; the bits left over are padding.
    auto flush = [&] {
        if (sextets == 2) out += static_cast<char>((bits >> 4) & 0xff);
        if (sextets == 3) {
            out += static_cast<char>((bits >> 10) & 0xff);
            out += static_cast<char>((bits >> 2) & 0xff);
        }
        bits = 0;
        sextets = 0;
    };
    for (const char c : in) {
        if (c == '=') {  // padding ends this quantum; concatenated encodings go on after it
            flush();
            continue;
        }
        const std::int8_t v = alphabet[static_cast<unsigned char>(c)];
        if (v < 0) continue;
        bits = (bits << 6) | static_cast<std::uint32_t>(v);
        if (++sextets == 4) {
            out += static_cast<char>((bits >> 16) & 0xff);
            out += static_cast<char>((bits >> 8) & 0xff);
            out += static_cast<char>(bits & 0xff);
            bits = 0;
            sextets = 0;
        }
    }
    flush();
    return out;
}

std::string decode_quoted_printable(std::string_view in) {
    std::string out;
    out.reserve(in.size());
    std::size_t i = 0;
    while (i < in.size()) {
        const char c = in[i];
        if (c != '=') {
            out += c;
            ++i;
            continue;
        }
        if (i + 2 < in.size() && hex_value(in[i + 1]) >= 0 && hex_value(in[i + 2]) >= 0) {
            out += static_cast<char>(hex_value(in[i + 1]) * 16 + hex_value(in[i + 2]));
            i += 3;
            continue;
        }
        // Soft line break: '=', optional transport padding, the line end (or the end of the body).
        std::size_t j = i + 1;
        while (j < in.size() && is_blank(in[j])) ++j;
        if (j == in.size()) break;
        if (in[j] == '\n') {
            i = j + 1;
            continue;
        }
        if (in[j] == '\r' && (j + 1 == in.size() || in[j + 1] == '\n')) {
            i = std::min(j + 2, in.size());
            continue;
        }
        out += '=';  // not a valid escape: kept as sent
        ++i;
    }
    return out;
}

std::string decode_transfer(std::string_view encoding, std::string_view body) {
    if (encoding == "base64") return decode_base64(body);
    if (encoding == "quoted-printable") return decode_quoted_printable(body);
    return std::string(body);
}

// --- header fields and parameters ---

struct Fields {
    std::string content_type;
    std::string transfer_encoding;
    std::string disposition;
};

struct Entity {
    Fields fields;
    std::string_view body;
};

// A field name (RFC 5322 3.6.8: printable ASCII but ':', no blanks), not empty.
bool is_field_name(std::string_view name) {
    return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) { return c > ' ' && c < 0x7f; });
}

// Splits at the first empty line, or at the first line that is neither a field nor a
// continuation (the body starts there, as mail clients read it: a part whose sender left out
// the empty line is still inspected); keeps the first of each field of interest, unfolded.
Entity split_entity(std::string_view s) {
    Entity e;
    std::array<bool, 3> seen{};
    std::string* current = nullptr;  // the field that continuation lines extend
    std::size_t pos = 0;
    while (pos < s.size()) {
        const std::size_t start = pos;
        const Line line = line_at(s, pos);
        pos = line.next;
        if (line.text.empty()) {
            e.body = s.substr(pos);
            return e;
        }
        if (is_blank(line.text.front())) {
            if (current) current->append(line.text);
            continue;
        }
        current = nullptr;
        const std::size_t colon = line.text.find(':');
        const std::string_view name = colon == npos ? std::string_view() : trim_ows(line.text.substr(0, colon));
        if (!is_field_name(name)) {
            e.body = s.substr(start);
            return e;
        }
        std::size_t index = seen.size();
        if (iequals(name, "content-type")) index = 0;
        if (iequals(name, "content-transfer-encoding")) index = 1;
        if (iequals(name, "content-disposition")) index = 2;
        if (index == seen.size() || seen[index]) continue;
        seen[index] = true;
        std::string* field[] = {&e.fields.content_type, &e.fields.transfer_encoding, &e.fields.disposition};
        current = field[index];
        current->assign(line.text.substr(colon + 1));
    }
    return e;  // only fields: no body
}

using Params = std::vector<std::pair<std::string, std::string>>;

// `; key=value` pairs after a field's first ';': quoted-strings with backslash escapes or
// tokens, keys lowercased, blanks around '=' and stray ';' tolerated.
Params parse_params(std::string_view s) {
    Params params;
    std::size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && (is_blank(s[i]) || s[i] == ';')) ++i;
        const std::size_t key_start = i;
        while (i < s.size() && s[i] != '=' && s[i] != ';') ++i;
        const std::string key = lowercase(trim_ows(s.substr(key_start, i - key_start)));
        if (i >= s.size() || s[i] == ';') continue;  // a key without a value
        ++i;
        while (i < s.size() && is_blank(s[i])) ++i;
        std::string value;
        if (i < s.size() && s[i] == '"') {
            for (++i; i < s.size() && s[i] != '"'; ++i) {
                if (s[i] == '\\' && i + 1 < s.size()) ++i;
                value += s[i];
            }
            while (i < s.size() && s[i] != ';') ++i;  // past the closing quote and any junk after it
        } else {
            const std::size_t value_start = i;
            while (i < s.size() && s[i] != ';') ++i;
            value = trim_ows(s.substr(value_start, i - value_start));
        }
        if (!key.empty()) params.emplace_back(key, std::move(value));
    }
    return params;
}

std::string percent_decode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
            out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}

// RFC 2231 charset'language'value: the value after the second quote (all of it without one).
std::string_view without_charset(std::string_view s) {
    const std::size_t first = s.find('\'');
    const std::size_t second = first == npos ? npos : s.find('\'', first + 1);
    return second == npos ? s : s.substr(second + 1);
}

// A parameter's value; the RFC 2231 forms (name*, name*0, name*1*, ...) take precedence over name=.
std::string param(const Params& params, std::string_view name) {
    constexpr std::size_t max_index_digits = 4;
    const std::string* plain = nullptr;
    std::vector<std::tuple<unsigned, bool, const std::string*>> pieces;  // index, encoded, value
    for (const auto& [key, value] : params) {
        if (!key.starts_with(name)) continue;
        std::string_view rest = std::string_view(key).substr(name.size());
        if (rest.empty()) {
            if (!plain) plain = &value;
            continue;
        }
        if (rest == "*") return percent_decode(without_charset(value));
        if (rest.front() != '*') continue;
        rest.remove_prefix(1);
        const bool encoded = rest.ends_with('*');
        if (encoded) rest.remove_suffix(1);
        if (rest.empty() || rest.size() > max_index_digits ||
            !std::all_of(rest.begin(), rest.end(), [](char c) { return c >= '0' && c <= '9'; }))
            continue;
        unsigned index = 0;
        for (const char c : rest) index = index * 10 + static_cast<unsigned>(c - '0');
        pieces.emplace_back(index, encoded, &value);
    }
    if (pieces.empty()) return plain ? *plain : std::string();
    std::stable_sort(pieces.begin(), pieces.end(),
                     [](const auto& a, const auto& b) { return std::get<0>(a) < std::get<0>(b); });
    std::string joined;
    for (const auto& [index, encoded, value] : pieces) {
        if (!encoded) {
            joined += *value;
            continue;
        }
        joined += percent_decode(index == 0 ? without_charset(*value) : std::string_view(*value));
    }
    return joined;
}

// The media type of a Content-Type value, lowercased; empty when absent or not type/subtype.
std::string media_type(std::string_view value) {
    std::string_view t = trim_ows(value.substr(0, value.find(';')));
    t = t.substr(0, t.find_first_of(" \t("));  // a comment or junk after the type
    const std::size_t slash = t.find('/');
    if (slash == npos || slash == 0 || slash + 1 == t.size()) return {};
    return lowercase(t);
}

std::string_view params_of(std::string_view value) {
    const std::size_t semicolon = value.find(';');
    return semicolon == npos ? std::string_view() : value.substr(semicolon + 1);
}

// --- the walk ---

enum class Delimiter { none, open, close };

// "--boundary" or "--boundary--", then only transport padding (RFC 2046 5.1.1).
Delimiter delimiter(std::string_view line, std::string_view boundary) {
    if (line.size() < boundary.size() + 2 || !line.starts_with("--") ||
        line.substr(2, boundary.size()) != boundary)
        return Delimiter::none;
    std::string_view rest = line.substr(boundary.size() + 2);
    Delimiter kind = Delimiter::open;
    if (rest.starts_with("--")) {
        kind = Delimiter::close;
        rest.remove_prefix(2);
    }
    return std::all_of(rest.begin(), rest.end(), is_blank) ? kind : Delimiter::none;
}

class Walker {
public:
    Walker(const MimeLimits& limits, MimeResult& result) : limits_(limits), result_(result) {}

    void entity(std::string_view text, std::size_t depth, bool in_digest) {
        if (stopped()) return;
        if (depth > limits_.max_depth) {
            result_.error =
                "MIME parts nested more than " + std::to_string(limits_.max_depth) + " levels deep";
            return;
        }
        const Entity e = split_entity(text);
        const std::string_view content_type = e.fields.content_type;
        MimePart part;
        part.depth = depth;
        part.content_type = media_type(content_type);
        if (part.content_type.empty()) part.content_type = in_digest ? "message/rfc822" : "text/plain";
        std::string_view encoding = trim_ows(e.fields.transfer_encoding);
        encoding = encoding.substr(0, encoding.find_first_of(" \t;("));
        part.transfer_encoding = encoding.empty() ? "7bit" : lowercase(encoding);
        const Params type_params = parse_params(params_of(content_type));

        const bool multipart = part.content_type.starts_with("multipart/");
        if (multipart || part.content_type == "message/rfc822" || part.content_type == "message/global") {
            // Containers are 7bit, 8bit or binary (RFC 2045 6.4); one encoded anyway is decoded
            // first, as a lenient client would.
            std::string decoded;
            std::string_view body = e.body;
            if (part.transfer_encoding == "base64" || part.transfer_encoding == "quoted-printable") {
                decoded = decode_transfer(part.transfer_encoding, body);
                body = decoded;
            }
            if (!multipart) {
                entity(body, depth + 1, false);
                return;
            }
            const std::string boundary = param(type_params, "boundary");
            if (!boundary.empty() &&
                walk_multipart(body, boundary, depth, part.content_type == "multipart/digest"))
                return;
            // Not walkable: inspected whole, as text.
            part.content_type = "text/plain";
            part.filename = filename(e.fields, type_params);
            part.body.assign(body);
            leaf(std::move(part));
            return;
        }
        part.filename = filename(e.fields, type_params);
        if (!room()) return;
        part.body = decode_transfer(part.transfer_encoding, e.body);
        leaf(std::move(part));
    }

private:
    bool stopped() const { return !result_.error.empty(); }

    bool room() {
        if (stopped()) return false;
        if (result_.parts.size() < limits_.max_parts) return true;
        result_.error = "more than " + std::to_string(limits_.max_parts) + " MIME parts";
        return false;
    }

    void leaf(MimePart&& part) {
        if (room()) result_.parts.push_back(std::move(part));
    }

    static std::string filename(const Fields& fields, const Params& type_params) {
        std::string name = param(parse_params(params_of(fields.disposition)), "filename");
        return name.empty() ? param(type_params, "name") : name;
    }

    // The parts between the delimiters, each an entity one level down. False when no
    // delimiter opens a part (the body is then not a multipart at all).
    bool walk_multipart(std::string_view body, std::string_view boundary, std::size_t depth, bool digest) {
        std::size_t part_start = npos;  // npos: still in the preamble
        for (std::size_t pos = 0; pos < body.size() && !stopped();) {
            const Line line = line_at(body, pos);
            const Delimiter d = delimiter(line.text, boundary);
            if (d != Delimiter::none && part_start != npos) {
                // The line break before a delimiter belongs to the delimiter.
                std::size_t end = pos;
                if (end > part_start && body[end - 1] == '\n') --end;
                if (end > part_start && body[end - 1] == '\r') --end;
                entity(body.substr(part_start, end - part_start), depth + 1, digest);
            }
            if (d == Delimiter::close) return part_start != npos;  // the epilogue is ignored
            if (d == Delimiter::open) part_start = line.next;
            pos = line.next;
        }
        if (part_start == npos) return false;
        entity(body.substr(part_start), depth + 1, digest);  // no close delimiter: runs to the end
        return true;
    }

    const MimeLimits& limits_;
    MimeResult& result_;
};

}  // namespace

MimeResult parse_message(std::string_view message, const MimeLimits& limits) {
    MimeResult result;
    Walker(limits, result).entity(message, 0, false);
    return result;
}

}  // namespace proxy::mail
