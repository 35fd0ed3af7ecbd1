#pragma once
// Drives one Inspection the way the relay does: the body in pieces, then finish().

#include "inspect/inspector.hpp"

#include <catch2/catch_test_macros.hpp>

#include <optional>
#include <string>

namespace inspect_testing {

inline std::span<const std::uint8_t> view(const std::string& s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// Feeds `body` in pieces of `piece` bytes; the first decided verdict, else the final one.
inline proxy::inspect::Verdict feed_in_pieces(proxy::inspect::Inspection& in, const std::string& body,
                                              std::size_t piece) {
    for (std::size_t off = 0; off < body.size(); off += piece) {
        proxy::inspect::Verdict v = in.body(view(body.substr(off, piece)));
        if (v.decided()) return v;
    }
    std::optional<proxy::inspect::Verdict> out;
    in.finish([&](proxy::inspect::Verdict v) { out = std::move(v); });
    REQUIRE(out);
    return *out;
}

}  // namespace inspect_testing
