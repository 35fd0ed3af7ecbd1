#pragma once
// Certificates signed inside the HSM, built with OpenSSL's X509 API: the CA certificates
// hsm-setup makes, and the node identities (hsm-setup add-node and renew-node, and the
// ca-service's signer when a node renews its own). One builder, so that a renewed identity
// is the same profile as the one the operator issued.

#include "ossl/handles.hpp"
#include "pkcs11/signer.hpp"

#include <chrono>
#include <optional>
#include <string>

namespace pki {

enum class Profile {
    Root,     // self-signed interception root: CA:TRUE, keyCertSign + cRLSign
    Issuing,  // issuing CA under the root: CA:TRUE pathLen 0, EKU serverAuth
    Audit,    // self-signed audit-checkpoint certificate: CA:FALSE, digitalSignature
    // A proxy node's mTLS identity under the node-identity CA: subject O / OU=nodes / CN=name,
    // CA:FALSE, digitalSignature, EKU clientAuth only. It can authenticate to the ca-service
    // and nothing else: no TLS server accepts it, and it can sign no certificate.
    NodeIdentity,
};

inline constexpr const char* kNodeUnit = "nodes";  // OU of node identities

struct CertificateRequest {
    Profile profile;
    std::string common_name;
    std::string organization;
    std::chrono::seconds lifetime{0};
    std::chrono::seconds backdate{3600};  // notBefore = now - backdate (clock skew)
    ossl::PKey subject_key;      // public key being certified
    const X509* issuer = nullptr;  // null for self-signed
};

// Builds the certificate and has `signer` (the issuer's HSM key) sign it; verifies the
// result against the signer's public key before returning it.
ossl::X509Ptr make_certificate(const CertificateRequest& request, pkcs11::Signer& signer);

ossl::PKey public_key_from_der(std::span<const std::uint8_t> spki);

}  // namespace pki
