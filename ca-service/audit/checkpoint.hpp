#pragma once
// Signed checkpoints: what the audit key signs and how a signature is checked.
//
// The signed statement is fixed text, so any implementation can rebuild it from the
// checkpoint record's fields:
//
//   splitca audit checkpoint v1\n
//   tree_size <decimal>\n
//   head <hex hash of record tree_size-1, or 64 zeros>\n
//   merkle_root <hex RFC 6962 root of records 0..tree_size-1>\n
//   signed_at <RFC 3339>\n
//
// The checkpoint record itself follows the records it covers (its seq >= tree_size: records
// may arrive while the HSM signs, and are not held back for it).

#include "ossl/digest.hpp"
#include "ossl/handles.hpp"

#include <cstdint>
#include <span>
#include <string>

namespace ca::audit {

using ossl::Sha256;

struct CheckpointStatement {
    std::uint64_t tree_size = 0;
    Sha256 head{};
    Sha256 merkle_root{};
    std::string signed_at;
};

std::string statement_text(const CheckpointStatement& statement);

// Checks checkpoint signatures with the public key of the audit certificate. ECDSA P-256 and
// P-384 (with SHA-256 and SHA-384) and RSA PKCS#1 v1.5 with SHA-256, matching HsmSigner.
class CheckpointVerifier {
public:
    // Throws std::runtime_error when the certificate's key is of an unsupported type.
    explicit CheckpointVerifier(const X509& audit_certificate);

    bool verify(const std::string& statement, std::span<const std::uint8_t> signature) const;
    // Hex SHA-256 of the certificate's DER SubjectPublicKeyInfo (what records name the key by).
    const std::string& spki_sha256() const { return spki_sha256_; }

private:
    ossl::PKey key_;
    const EVP_MD* md_ = nullptr;
    std::string spki_sha256_;
};

}  // namespace ca::audit
