#pragma once
// RFC 6962 Merkle Tree Hash over the log's records, kept as a compact frontier.
//
// The frontier is the list of roots of the perfect subtrees that make up a tree of n leaves
// (one per set bit of n, largest first): at most 64 hashes, enough to append leaves and to
// compute the tree root without keeping every leaf. A rotation record stores it, so a log
// file can be resumed (and checked) without reading the files before it.

#include "ossl/digest.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace ca::audit {

using ossl::Sha256;

// SHA-256(0x00 || entry)
Sha256 merkle_leaf_hash(std::span<const std::uint8_t> entry);
// SHA-256(0x01 || left || right)
Sha256 merkle_node_hash(const Sha256& left, const Sha256& right);

class MerkleFrontier {
public:
    MerkleFrontier() = default;
    // Rebuilds a frontier from its parts; nullopt when the number of roots does not match
    // the number of set bits of `size`.
    static std::optional<MerkleFrontier> from_parts(std::uint64_t size, std::vector<Sha256> subtree_roots);

    void append(const Sha256& leaf_hash);
    std::uint64_t size() const { return size_; }
    // MTH of all leaves so far; SHA-256("") for the empty tree (RFC 6962 section 2.1).
    Sha256 root() const;
    const std::vector<Sha256>& subtree_roots() const { return roots_; }

    bool operator==(const MerkleFrontier&) const = default;

private:
    std::uint64_t size_ = 0;
    std::vector<Sha256> roots_;  // largest subtree first
};

}  // namespace ca::audit
