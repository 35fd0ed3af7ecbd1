#include "ossl/der.hpp"

#include <ctime>

namespace der {

void append_header(Bytes& out, std::uint8_t t, std::size_t n) {
    out.push_back(t);
    if (n < 0x80) {
        out.push_back(static_cast<std::uint8_t>(n));
        return;
    }
    std::uint8_t len[sizeof(std::size_t)];
    int k = 0;
    for (std::size_t v = n; v != 0; v >>= 8) len[k++] = static_cast<std::uint8_t>(v & 0xff);
    out.push_back(static_cast<std::uint8_t>(0x80 | k));
    while (k > 0) out.push_back(len[--k]);
}

void append_tlv(Bytes& out, std::uint8_t t, Span content) {
    append_header(out, t, content.size());
    out.insert(out.end(), content.begin(), content.end());
}

Bytes tlv(std::uint8_t t, Span content) {
    Bytes out;
    out.reserve(content.size() + 6);
    append_tlv(out, t, content);
    return out;
}

Bytes sequence(std::initializer_list<Span> parts) {
    std::size_t n = 0;
    for (auto p : parts) n += p.size();
    Bytes out;
    out.reserve(n + 6);
    append_header(out, tag::kSequence, n);
    for (auto p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}

Bytes unsigned_integer(Span magnitude) {
    std::size_t skip = 0;
    while (skip + 1 < magnitude.size() && magnitude[skip] == 0 && (magnitude[skip + 1] & 0x80) == 0) ++skip;
    Span m = magnitude.subspan(skip);
    Bytes content;
    content.reserve(m.size() + 1);
    if (m.empty() || (m[0] & 0x80) != 0) content.push_back(0);
    content.insert(content.end(), m.begin(), m.end());
    return tlv(tag::kInteger, content);
}

Bytes bit_string(Span bits) {
    Bytes out;
    out.reserve(bits.size() + 7);
    append_header(out, tag::kBitString, bits.size() + 1);
    out.push_back(0);
    out.insert(out.end(), bits.begin(), bits.end());
    return out;
}

Bytes octet_string(Span bytes) { return tlv(tag::kOctetString, bytes); }

Bytes time(std::chrono::system_clock::time_point t) {
    std::time_t secs = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    const int year = tm.tm_year + 1900;
    // UTCTime (YYMMDDHHMMSSZ) for 1950-2049, GeneralizedTime (YYYYMMDDHHMMSSZ) otherwise
    // (RFC 5280 section 4.1.2.5). Formatted by hand: snprintf is a visible share of issuance.
    // system_clock (64-bit nanoseconds) spans the years 1678-2262: always four digits.
    const bool utc = year >= 1950 && year < 2050;
    char buf[16];
    char* o = buf;
    auto digits = [&o](int v, int width) {
        ossl::put_decimal(o, v, width);
        o += width;
    };
    if (utc) digits(year % 100, 2);
    else digits(year, 4);
    for (int v : {tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec}) digits(v, 2);
    *o++ = 'Z';
    return tlv(utc ? tag::kUtcTime : tag::kGeneralizedTime,
               ossl::as_bytes(std::string_view(buf, static_cast<std::size_t>(o - buf))));
}

Bytes certificate(Span tbs, Span algorithm_identifier, Span signature) {
    Bytes sig = bit_string(signature);
    return sequence({tbs, algorithm_identifier, sig});
}

}  // namespace der

namespace der {

std::optional<Element> read(Span in) {
    if (in.size() < 2) return std::nullopt;
    const std::uint8_t t = in[0];
    if ((t & 0x1f) == 0x1f) return std::nullopt;  // multi-byte tags are not used here
    std::size_t len = in[1];
    std::size_t header = 2;
    if (len & 0x80) {
        const std::size_t n = len & 0x7f;
        if (n == 0 || n > sizeof(std::size_t) || in.size() < 2 + n || in[2] == 0) return std::nullopt;
        len = 0;
        for (std::size_t i = 0; i < n; ++i) len = len << 8 | in[2 + i];
        if (len < 0x80) return std::nullopt;  // not minimal
        header += n;
    }
    if (in.size() - header < len) return std::nullopt;
    return Element{t, in.subspan(header, len), in.subspan(header + len)};
}

std::optional<Span> public_key_bits(Span spki) {
    auto outer = read(spki);
    if (!outer || outer->tag != tag::kSequence || !outer->rest.empty()) return std::nullopt;
    auto alg = read(outer->content);
    if (!alg || alg->tag != tag::kSequence) return std::nullopt;
    auto bits = read(alg->rest);
    if (!bits || bits->tag != tag::kBitString || !bits->rest.empty() || bits->content.empty() ||
        bits->content[0] != 0)
        return std::nullopt;
    return bits->content.subspan(1);
}

}  // namespace der
