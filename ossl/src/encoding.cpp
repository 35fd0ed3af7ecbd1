#include "ossl/encoding.hpp"

#include <array>

namespace ossl {

namespace {
constexpr std::string_view kHexDigits = "0123456789abcdef";
constexpr std::string_view kB64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<int, 256> make_b64_table() {
    std::array<int, 256> t{};
    for (auto& v : t) v = -1;
    for (std::size_t i = 0; i < kB64.size(); ++i) t[static_cast<unsigned char>(kB64[i])] = static_cast<int>(i);
    return t;
}
constexpr auto kB64Table = make_b64_table();
}  // namespace

std::string to_hex(std::span<const std::uint8_t> bytes) {
    std::string out;
    out.reserve(bytes.size() * 2);
    for (auto b : bytes) {
        out.push_back(kHexDigits[b >> 4]);
        out.push_back(kHexDigits[b & 0x0f]);
    }
    return out;
}

std::optional<Bytes> from_hex(std::string_view hex) {
    if (hex.size() % 2 != 0) return std::nullopt;
    Bytes out(hex.size() / 2);
    for (std::size_t i = 0; i < out.size(); ++i) {
        int hi = hex_digit_value(hex[2 * i]);
        int lo = hex_digit_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out[i] = static_cast<std::uint8_t>(hi << 4 | lo);
    }
    return out;
}

void put_decimal(char* out, int value, int width) {
    for (int i = width - 1; i >= 0; --i, value /= 10) out[i] = static_cast<char>('0' + value % 10);
}

std::string to_base64(std::span<const std::uint8_t> bytes) {
    std::string out((bytes.size() + 2) / 3 * 4, '=');
    char* o = out.data();
    std::size_t i = 0;
    for (; i + 3 <= bytes.size(); i += 3) {
        const std::uint32_t v = bytes[i] << 16 | bytes[i + 1] << 8 | bytes[i + 2];
        *o++ = kB64[v >> 18 & 63];
        *o++ = kB64[v >> 12 & 63];
        *o++ = kB64[v >> 6 & 63];
        *o++ = kB64[v & 63];
    }
    if (const std::size_t rest = bytes.size() - i; rest > 0) {  // the '=' padding is already there
        const std::uint32_t v = bytes[i] << 16 | (rest == 2 ? bytes[i + 1] << 8 : 0);
        *o++ = kB64[v >> 18 & 63];
        *o++ = kB64[v >> 12 & 63];
        if (rest == 2) *o = kB64[v >> 6 & 63];
    }
    return out;
}

std::optional<Bytes> from_base64(std::string_view text) {
    if (text.size() % 4 != 0) return std::nullopt;
    Bytes out;
    out.reserve(text.size() / 4 * 3);
    for (std::size_t i = 0; i < text.size(); i += 4) {
        const bool last = i + 4 == text.size();
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; ++k) {
            char c = text[i + k];
            if (c == '=' && last && k >= 2) {
                v[k] = 0;
                ++pad;
                continue;
            }
            if (pad > 0) return std::nullopt;  // data after padding
            v[k] = kB64Table[static_cast<unsigned char>(c)];
            if (v[k] < 0) return std::nullopt;
        }
        std::uint32_t w = v[0] << 18 | v[1] << 12 | v[2] << 6 | v[3];
        out.push_back(static_cast<std::uint8_t>(w >> 16));
        if (pad < 2) out.push_back(static_cast<std::uint8_t>(w >> 8 & 0xff));
        if (pad < 1) out.push_back(static_cast<std::uint8_t>(w & 0xff));
    }
    return out;
}

}  // namespace ossl
