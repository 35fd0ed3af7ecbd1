#pragma once
// Multi-pattern byte search over a stream (Aho-Corasick as a dense DFA), carrying its state
// across calls so that a pattern split over chunks, TLS records or reads is still found.
// The bulk path stays fast because, in the root state, it skips to the next position that
// can start a pattern (memchr per first byte when there are few, else a first-byte table)
// and checks the first two bytes against a prefix table before stepping the automaton.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace proxy::inspect {

class PatternSet {
public:
    static constexpr std::size_t kMinPatternBytes = 4;
    static constexpr std::size_t kMaxPatternBytes = 1024;
    static constexpr std::size_t kMaxTotalBytes = 16 * 1024;  // DFA: 1 KiB per byte of pattern
    // Up to this many distinct first bytes, the root state skips with one memchr per byte.
    static constexpr std::size_t kMaxMemchrFirsts = 4;

    using State = std::uint32_t;  // 0: the root (nothing of any pattern seen)
    static constexpr int kNoMatch = -1;

    // Pattern i is reported as i. Throws std::invalid_argument on a pattern outside the
    // length limits or when the total is over kMaxTotalBytes.
    explicit PatternSet(const std::vector<std::vector<std::uint8_t>>& patterns);

    // Scans `bytes` from `state`; returns the index of the first pattern whose last byte is
    // in `bytes` (state is then undefined), or kNoMatch with `state` updated.
    int scan(State& state, std::span<const std::uint8_t> bytes) const;

    bool empty() const { return patterns_ == 0; }

private:
    std::size_t patterns_ = 0;
    std::vector<State> next_;            // next_[s * 256 + byte]
    std::vector<std::int32_t> out_;      // pattern ending in state s (or via its suffix links), else -1
    std::vector<std::uint8_t> first_;    // byte can start a pattern
    std::vector<std::uint8_t> prefix2_;  // two-byte prefix of some pattern, indexed b0 << 8 | b1
    std::vector<std::uint8_t> firsts_;   // the distinct first bytes, when few (memchr each)
};

}  // namespace proxy::inspect
