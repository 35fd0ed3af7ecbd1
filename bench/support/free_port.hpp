#pragma once
// A loopback TCP port that was free a moment ago (bind to port 0, read it back, close).

#include <cstdint>

namespace bench {

// Throws std::runtime_error when no socket or port can be had.
std::uint16_t free_loopback_port();

}  // namespace bench
