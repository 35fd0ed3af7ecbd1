#include "audit/merkle.hpp"

#include <bit>

namespace ca::audit {

namespace {
constexpr std::uint8_t kLeafPrefix = 0x00;
constexpr std::uint8_t kNodePrefix = 0x01;
}  // namespace

Sha256 merkle_leaf_hash(std::span<const std::uint8_t> entry) {
    const std::uint8_t prefix = kLeafPrefix;
    return ossl::sha256({std::span<const std::uint8_t>(&prefix, 1), entry});
}

Sha256 merkle_node_hash(const Sha256& left, const Sha256& right) {
    const std::uint8_t prefix = kNodePrefix;
    return ossl::sha256({std::span<const std::uint8_t>(&prefix, 1), std::span<const std::uint8_t>(left),
                         std::span<const std::uint8_t>(right)});
}

std::optional<MerkleFrontier> MerkleFrontier::from_parts(std::uint64_t size,
                                                         std::vector<Sha256> subtree_roots) {
    if (static_cast<std::size_t>(std::popcount(size)) != subtree_roots.size()) return std::nullopt;
    MerkleFrontier f;
    f.size_ = size;
    f.roots_ = std::move(subtree_roots);
    return f;
}

void MerkleFrontier::append(const Sha256& leaf_hash) {
    roots_.push_back(leaf_hash);
    // Each trailing 1 bit of the old size is a subtree of the same size as the one just
    // completed: merge them, like a binary carry.
    for (std::uint64_t n = size_; (n & 1) != 0; n >>= 1) {
        Sha256 right = roots_.back();
        roots_.pop_back();
        roots_.back() = merkle_node_hash(roots_.back(), right);
    }
    ++size_;
}

Sha256 MerkleFrontier::root() const {
    if (roots_.empty()) return ossl::sha256(std::span<const std::uint8_t>{});
    // RFC 6962 splits at the largest power of two below n, which is exactly the first
    // subtree; folding from the smallest subtree leftwards reproduces that recursion.
    Sha256 acc = roots_.back();
    for (auto it = roots_.rbegin() + 1; it != roots_.rend(); ++it) acc = merkle_node_hash(*it, acc);
    return acc;
}

}  // namespace ca::audit
