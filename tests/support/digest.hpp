#pragma once
// The SHA-256 of test bytes as lower-case hex (what origins log and tests compare).

#include "ossl/digest.hpp"
#include "ossl/encoding.hpp"

#include <cstdint>
#include <span>
#include <string>

namespace testing_support {

inline std::string sha256_hex(const std::string& s) {
    const auto d = ossl::sha256(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()));
    return ossl::to_hex(std::span<const std::uint8_t>(d.data(), d.size()));
}

}  // namespace testing_support
