#include "certs/leaf_key.hpp"

#include "ossl/error.hpp"

namespace proxy {

LeafKeyRing::LeafKeyRing(std::chrono::seconds rotation) : rotation_(rotation), current_(generate(0)) {}

std::shared_ptr<const LeafKey> LeafKeyRing::generate(std::uint64_t generation) {
    auto k = std::make_shared<LeafKey>();
    k->key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    if (!k->key) throw ossl::Error("generating the leaf key pair (EC P-256)");
    int len = i2d_PUBKEY(k->key.get(), nullptr);
    if (len <= 0) throw ossl::Error("encoding the leaf public key");
    k->spki_der.resize(static_cast<std::size_t>(len));
    unsigned char* p = k->spki_der.data();
    i2d_PUBKEY(k->key.get(), &p);
    k->created = std::chrono::steady_clock::now();
    k->generation = generation;
    return k;
}

std::shared_ptr<const LeafKey> LeafKeyRing::current() {
    std::lock_guard lock(mu_);
    if (std::chrono::steady_clock::now() - current_->created >= rotation_) current_ = generate(current_->generation + 1);
    return current_;
}

std::uint64_t LeafKeyRing::rotations() const {
    std::lock_guard lock(mu_);
    return current_->generation;
}

}  // namespace proxy
