#pragma once
// Who a client of the ca-service is: taken from its certificate in the service PKI, never
// from anything it sends. The front reads it from the certificate its TLS handshake
// verified; the signer, which does not trust the front, verifies the same certificate again
// against the service CA before it acts on it.

#include "authority/node_registry.hpp"
#include "ossl/encoding.hpp"
#include "ossl/handles.hpp"
#include "protocol/errors.hpp"

#include <openssl/x509.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <variant>

namespace ca {

inline constexpr const char* kAdminUnit = "admins";  // OU=admins in the service PKI
// client -> [node-identity CA ->] service CA: at most one CA between.
inline constexpr int kClientVerifyDepth = 2;

// Name (CN), SHA-256 fingerprint and role of a certificate; nullopt without a CN.
std::optional<NodeIdentity> identity_from_certificate(const X509& certificate);

class ClientVerifier {
public:
    // service_ca: the PEM file of the service PKI's CA; node_identity_ca (optional): the CA
    // under it that issues nodes' renewed identities. Throws naming the file.
    explicit ClientVerifier(const std::filesystem::path& service_ca,
                            const std::filesystem::path& node_identity_ca = {});

    // Verifies a DER client certificate (chain to the service CA, validity now, the TLS
    // client purpose). An identity under the node-identity CA is a node, never an admin,
    // whatever its OU says: admins come from the service CA itself, and the node-identity
    // CA's key is one the ca-service can use. Results are cached by fingerprint until the
    // certificate expires.
    std::variant<NodeIdentity, protocol::Error> verify(std::span<const std::uint8_t> der);

private:
    struct Verified {
        NodeIdentity identity;
        std::chrono::system_clock::time_point not_after;
    };
    ossl::X509StorePtr store_;
    std::mutex mu_;
    std::map<std::string, Verified> cache_;  // by fingerprint; bounded
};

}  // namespace ca
