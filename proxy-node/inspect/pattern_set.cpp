#include "inspect/pattern_set.hpp"

#include <array>
#include <cstring>
#include <deque>
#include <stdexcept>

namespace proxy::inspect {

PatternSet::PatternSet(const std::vector<std::vector<std::uint8_t>>& patterns)
    : patterns_(patterns.size()), first_(256, 0), prefix2_(65536, 0) {
    std::size_t total = 0;
    for (const auto& p : patterns) {
        if (p.size() < kMinPatternBytes || p.size() > kMaxPatternBytes)
            throw std::invalid_argument("a pattern must be " + std::to_string(kMinPatternBytes) + " to " +
                                        std::to_string(kMaxPatternBytes) + " bytes long");
        total += p.size();
    }
    if (total > kMaxTotalBytes)
        throw std::invalid_argument("patterns total " + std::to_string(total) + " bytes, over the limit of " +
                                    std::to_string(kMaxTotalBytes));
    // Trie with goto entries filled in, then breadth-first failure links turned into a DFA.
    next_.assign(256, 0);
    out_.assign(1, kNoMatch);
    for (std::size_t i = 0; i < patterns.size(); ++i) {
        State s = 0;
        for (std::uint8_t b : patterns[i]) {
            State& t = next_[s * 256 + b];
            if (t == 0) {
                t = static_cast<State>(out_.size());
                out_.push_back(kNoMatch);
                next_.resize(next_.size() + 256, 0);
            }
            s = next_[s * 256 + b];  // re-read: resize may have moved the vector
        }
        if (out_[s] == kNoMatch) out_[s] = static_cast<std::int32_t>(i);
        first_[patterns[i][0]] = 1;
        prefix2_[(patterns[i][0] << 8) | patterns[i][1]] = 1;
    }
    std::vector<State> fail(out_.size(), 0);
    std::deque<State> queue;
    for (int b = 0; b < 256; ++b)
        if (State t = next_[b]; t != 0) queue.push_back(t);
    while (!queue.empty()) {
        const State s = queue.front();
        queue.pop_front();
        if (out_[s] == kNoMatch) out_[s] = out_[fail[s]];
        for (int b = 0; b < 256; ++b) {
            State& t = next_[s * 256 + static_cast<std::size_t>(b)];
            const State via_fail = next_[fail[s] * 256 + static_cast<std::size_t>(b)];
            if (t != 0) {
                fail[t] = via_fail;
                queue.push_back(t);
            } else {
                t = via_fail;
            }
        }
    }
    for (int b = 0; b < 256; ++b)
        if (first_[static_cast<std::size_t>(b)] != 0) firsts_.push_back(static_cast<std::uint8_t>(b));
    if (firsts_.size() > kMaxMemchrFirsts) firsts_.clear();
}

int PatternSet::scan(State& state, std::span<const std::uint8_t> bytes) const {
    if (patterns_ == 0) return kNoMatch;
    const std::uint8_t* p = bytes.data();
    const std::uint8_t* const end = p + bytes.size();
    // Next occurrence of each first byte at or after p (memchr is vectorised; recomputed
    // only once p has passed it).
    std::array<const std::uint8_t*, kMaxMemchrFirsts> next{};
    State s = state;
    while (p < end) {
        if (s == 0) {
            // Root: no pattern is under way, so positions that cannot start one are skipped.
            if (!firsts_.empty()) {
                const std::uint8_t* best = end;
                for (std::size_t k = 0; k < firsts_.size(); ++k) {
                    if (next[k] == nullptr || (next[k] < p && next[k] != end)) {
                        const void* f = std::memchr(p, firsts_[k], static_cast<std::size_t>(end - p));
                        next[k] = f == nullptr ? end : static_cast<const std::uint8_t*>(f);
                    }
                    if (next[k] < best) best = next[k];
                }
                p = best;
                if (p == end) break;
            } else {
                while (p < end && first_[*p] == 0) ++p;
                if (p == end) break;
            }
            if (p + 1 < end && prefix2_[(static_cast<unsigned>(p[0]) << 8) | p[1]] == 0) {
                ++p;
                continue;
            }
        }
        s = next_[static_cast<std::size_t>(s) * 256 + *p++];
        if (out_[s] != kNoMatch) return out_[s];
    }
    state = s;
    return kNoMatch;
}

}  // namespace proxy::inspect
