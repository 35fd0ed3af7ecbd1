#pragma once
// Which leaf public keys the ca-service certifies: EC P-256/P-384 or RSA of at least
// 2048 bits, the keys every TLS client accepts and none considers weak.

#include "ossl/encoding.hpp"
#include "protocol/errors.hpp"

#include <cstdint>
#include <deque>
#include <mutex>
#include <span>
#include <unordered_map>
#include <string>
#include <variant>

namespace ca::policy {

inline constexpr unsigned kMinRsaBits = 2048;
// Upper bound for a configured minimum: protocol::kMaxPublicKeyBytes cannot carry more.
inline constexpr unsigned kMaxConfigurableRsaBits = 8192;

struct AcceptedKey {
    ossl::Bytes spki_der;     // re-encoded by OpenSSL: canonical DER, what the leaf will carry
    std::string description;  // "EC P-256", "RSA 3072": for the audit log
};

// der: a DER SubjectPublicKeyInfo. invalid_public_key when it does not parse, has trailing
// bytes or fails OpenSSL's public-key check; weak_public_key for other key types, curves,
// RSA keys under min_rsa_bits or with an unusable public exponent.
std::variant<AcceptedKey, protocol::Error> check_public_key(std::span<const std::uint8_t> der,
                                                            unsigned min_rsa_bits = kMinRsaBits);

// Nodes send the same key with every request until they rotate it, and checking a key with
// OpenSSL 3.0's decoders costs several times an HSM signature: accepted keys are remembered,
// keyed by their exact DER bytes. Refusals are not cached. Thread-safe, bounded.
inline constexpr std::size_t kAcceptedKeyCacheSize = 4096;

class AcceptedKeyCache {
public:
    explicit AcceptedKeyCache(std::size_t capacity = kAcceptedKeyCacheSize) : capacity_(capacity) {}

    std::variant<AcceptedKey, protocol::Error> check(std::span<const std::uint8_t> der, unsigned min_rsa_bits);

private:
    std::size_t capacity_;
    std::mutex mu_;
    std::unordered_map<std::string, AcceptedKey> accepted_;  // by DER bytes, per min_rsa_bits
    std::deque<std::string> order_;                          // insertion order, for eviction
};

}  // namespace ca::policy
