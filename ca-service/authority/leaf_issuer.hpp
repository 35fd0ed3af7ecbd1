#pragma once
// Builds and signs leaf certificates. The profile is fixed here, whatever a node asks:
// CA:FALSE (critical), keyUsage digitalSignature (critical), EKU serverAuth only, the
// approved names as SANs, the requesting node's name as subject OU (so a forged certificate
// seen anywhere names the node that obtained it), a 128-bit random serial, SKI/AKI, and the approved validity.
//
// Fast path: everything constant (issuer name, algorithm identifier, AKI, the fixed
// extensions) is DER-encoded once; each leaf is a few appends, one SHA-256 and one HSM
// signature. OpenSSL 3.0's X509 builder costs more than the HSM signature itself.

#include "ossl/encoding.hpp"
#include "ossl/handles.hpp"
#include "pkcs11/signer.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ca {

struct LeafOrder {
    std::span<const std::string> dns_names;      // normalised, validated by the policy
    std::span<const ossl::Bytes> ip_addresses;   // 4 or 16 bytes each, network order
    std::span<const std::uint8_t> public_key;    // DER SubjectPublicKeyInfo, validated
    std::string_view node_name;                  // the requesting node (subject OU); may be empty
    std::chrono::system_clock::time_point not_before;
    std::chrono::system_clock::time_point not_after;
};

struct IssuedLeaf {
    ossl::Bytes der;
    std::string pem;
    std::string serial_hex;
};

inline constexpr std::size_t kSerialBytes = 16;  // 128 bits, 127 of them random

class LeafIssuer {
public:
    // Throws when the signer's key is not the issuing certificate's key.
    LeafIssuer(pkcs11::Signer& signer, const X509& issuing_certificate);

    // Throws pkcs11::HsmUnavailable when the HSM cannot sign; std::invalid_argument when
    // the order is unusable (no names, malformed key).
    IssuedLeaf issue(const LeafOrder& order) const;

private:
    ossl::Bytes next_serial() const;

    pkcs11::Signer& signer_;
    ossl::Bytes issuer_name_;  // DER Name
    ossl::Bytes fixed_extensions_;  // basicConstraints, keyUsage, EKU, AKI

    // Serial randomness drawn from the CSPRNG a block at a time: one RAND_bytes per leaf was
    // ~2% of issuance (OpenSSL 3.0's DRBG re-initialises its cipher on every call). Each
    // serial still takes fresh CSPRNG output that no other serial shares.
    static constexpr std::size_t kSerialBlock = 64;
    mutable std::mutex serial_mu_;
    mutable std::array<std::uint8_t, kSerialBlock * kSerialBytes> serial_pool_{};
    mutable std::size_t serial_next_ = serial_pool_.size();  // empty: filled on first use
};

}  // namespace ca
