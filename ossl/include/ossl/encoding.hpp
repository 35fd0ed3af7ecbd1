#pragma once
// Byte strings and the text encodings used on the wire and in logs.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ossl {

using Bytes = std::vector<std::uint8_t>;

// The value of one hex digit (either case), -1 for any other character.
constexpr int hex_digit_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::string to_hex(std::span<const std::uint8_t> bytes);
std::optional<Bytes> from_hex(std::string_view hex);

// Writes the non-negative `value` as exactly `width` decimal digits at `out` (zero-padded,
// higher digits dropped): the fixed-width fields of certificate and RFC 3339 times, without
// snprintf on the issuance path.
void put_decimal(char* out, int value, int width);

std::string to_base64(std::span<const std::uint8_t> bytes);
// Strict standard base64 (RFC 4648 section 4, padded, no whitespace); nullopt if malformed.
std::optional<Bytes> from_base64(std::string_view text);

inline std::span<const std::uint8_t> as_bytes(std::string_view s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

}  // namespace ossl
