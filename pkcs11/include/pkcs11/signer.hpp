#pragma once
// Signing to-be-signed bytes with a key that never leaves the HSM.

#include "ossl/encoding.hpp"
#include "pkcs11/provider.hpp"
#include "pkcs11/uri.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>

namespace pkcs11 {

using ossl::Bytes;

// What the services need from a signing key: the AlgorithmIdentifier to embed in what they
// sign, the matching signature, and the public key.
class Signer {
public:
    virtual ~Signer() = default;
    // DER AlgorithmIdentifier of the signatures produced (e.g. ecdsa-with-SHA256).
    virtual std::span<const std::uint8_t> algorithm_identifier() const = 0;
    // DER SubjectPublicKeyInfo of the key.
    virtual std::span<const std::uint8_t> public_key_info() const = 0;
    // Signature over `tbs` (hashing included), DER-encoded as X.509 expects it.
    virtual Bytes sign(std::span<const std::uint8_t> tbs) = 0;
};

// The HSM cannot be used right now (token gone, sessions invalidated, module error).
// The signer re-initialises on a later call; callers should answer "try again later".
class HsmUnavailable : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct SignerConfig {
    HsmConfig hsm;
    Uri key;                                // the private key on the token
    unsigned max_concurrent_operations = 8; // HSM operations in flight at once
    std::chrono::milliseconds reconnect_interval{500};  // between re-initialisation attempts
};

struct SignerHealth {
    bool available = true;
    std::string last_error;        // why it is unavailable (or the last failure)
    std::uint64_t reconnects = 0;  // successful re-initialisations since start
};

// Thread-safe. Construction connects and throws (std::runtime_error with the reason) when
// the configuration cannot work: missing module, unknown token, wrong PIN, missing key,
// unsupported key type. Later failures throw HsmUnavailable; the next call after
// reconnect_interval rebuilds the provider context and the key from scratch.
class HsmSigner final : public Signer {
public:
    explicit HsmSigner(SignerConfig config);
    ~HsmSigner() override;

    std::span<const std::uint8_t> algorithm_identifier() const override;
    std::span<const std::uint8_t> public_key_info() const override;
    Bytes sign(std::span<const std::uint8_t> tbs) override;

    SignerHealth health() const;

private:
    struct State;
    std::unique_ptr<State> state_;
};

}  // namespace pkcs11
