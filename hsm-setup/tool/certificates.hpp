#pragma once
// CA certificates for the setup: built with OpenSSL's X509 API, signed inside the HSM.

#include "ossl/handles.hpp"
#include "pkcs11/signer.hpp"

#include <chrono>
#include <optional>
#include <string>

namespace setup {

enum class Profile {
    Root,     // self-signed interception root: CA:TRUE, keyCertSign + cRLSign
    Issuing,  // issuing CA under the root: CA:TRUE pathLen 0, EKU serverAuth
    Audit,    // self-signed audit-checkpoint certificate: CA:FALSE, digitalSignature
};

struct CertificateRequest {
    Profile profile;
    std::string common_name;
    std::string organization;
    std::chrono::days lifetime;
    ossl::PKey subject_key;      // public key being certified
    const X509* issuer = nullptr;  // null for self-signed
};

// Builds the certificate and has `signer` (the issuer's HSM key) sign it; verifies the
// result against the signer's public key before returning it.
ossl::X509Ptr make_certificate(const CertificateRequest& request, pkcs11::Signer& signer);

ossl::PKey public_key_from_der(std::span<const std::uint8_t> spki);

}  // namespace setup
