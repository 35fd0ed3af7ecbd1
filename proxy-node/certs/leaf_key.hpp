#pragma once
// The node's leaf key pair: EC P-256, generated in memory at start, never written anywhere,
// replaced on a schedule. Certificates already issued for an older key keep working with
// that key until they expire (each cache entry holds the key it was issued for).

#include "ossl/encoding.hpp"
#include "ossl/handles.hpp"

#include <chrono>
#include <memory>
#include <mutex>

namespace proxy {

struct LeafKey {
    ossl::PKey key;
    ossl::Bytes spki_der;  // what a LeafRequest carries
    std::chrono::steady_clock::time_point created;
    std::uint64_t generation = 0;
};

class LeafKeyRing {
public:
    explicit LeafKeyRing(std::chrono::seconds rotation);

    // The key new certificates are requested for; rotates first when it is due.
    std::shared_ptr<const LeafKey> current();
    std::uint64_t rotations() const;

private:
    static std::shared_ptr<const LeafKey> generate(std::uint64_t generation);

    std::chrono::seconds rotation_;
    mutable std::mutex mu_;
    std::shared_ptr<const LeafKey> current_;
};

}  // namespace proxy
