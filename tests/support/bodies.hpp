#pragma once
// Bodies for inspection tests: the origin's deterministic pattern, and gzip of any bytes.

#include "support/origin_server.hpp"

#include <zlib.h>

#include <cstdint>
#include <string>

namespace testing_support {

// `n` bytes of the pattern the origin serves for /bytes/N (origin_pattern_byte).
inline std::string pattern_body(std::uint64_t n) {
    std::string s(n, '\0');
    for (std::uint64_t i = 0; i < n; ++i) s[i] = static_cast<char>(origin_pattern_byte(i));
    return s;
}

// `in` compressed as a gzip member (Content-Encoding: gzip).
inline std::string gzip(const std::string& in) {
    z_stream z{};
    deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    std::string out(deflateBound(&z, in.size()), '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z.avail_in = static_cast<uInt>(in.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    deflate(&z, Z_FINISH);
    out.resize(z.total_out);
    deflateEnd(&z);
    return out;
}

}  // namespace testing_support
