#pragma once

#include <array>
#include <cstdint>
#include <span>

namespace ossl {

using Sha256 = std::array<std::uint8_t, 32>;

// One-shot SHA-256 through the default library context's prefetched implementation.
Sha256 sha256(std::span<const std::uint8_t> data);

// Incremental SHA-256 over several pieces (e.g. hash chains): avoids concatenation.
Sha256 sha256(std::initializer_list<std::span<const std::uint8_t>> pieces);

}  // namespace ossl
