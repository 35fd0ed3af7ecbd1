#pragma once
// Certificates for test origin servers, made in memory with the X509 API: a private
// "origin root" the proxy is told to trust (upstream.extra_ca), and leaves with exactly
// the defects the tests need (expired, not yet valid, self-signed, unknown root, wrong
// host, SHA-1 signature, RSA-1024 key).

#include "ossl/handles.hpp"

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace testing_support {

struct OriginCert {
    ossl::X509Ptr cert;
    ossl::PKey key;
    std::vector<ossl::X509Ptr> chain;  // intermediates to send after the leaf (none here)
};

enum class KeyKind { ec_p256, rsa2048, rsa1024 };
enum class IssuerKind { origin_root, self_signed, unknown_root };

struct CertSpec {
    std::vector<std::string> dns_names;
    std::vector<std::string> ip_addresses;
    std::string subject_cn;  // empty: the first DNS name (or IP address)
    std::chrono::seconds not_before_offset{-3600};       // relative to now
    std::chrono::seconds not_after_offset{30 * 86400};
    KeyKind key = KeyKind::ec_p256;
    const char* digest = "SHA256";
    IssuerKind issuer = IssuerKind::origin_root;
};

// A plain, valid certificate for `names` under the origin root.
CertSpec valid_for(std::vector<std::string> names);

class OriginPki {
public:
    OriginPki();  // a fresh origin root and an unrelated "unknown" root

    OriginCert issue(const CertSpec& spec) const;
    const X509& root() const { return *root_.cert; }
    // Writes the origin root as PEM (what the proxy trusts).
    void write_root(const std::filesystem::path& file) const;
    // The origin root with its key, e.g. to sign OCSP responses for its leaves.
    const OriginCert& root_identity() const { return root_; }

private:
    OriginCert root_;
    OriginCert unknown_root_;
};

// PEM files for tools such as openssl s_server.
void write_cert_and_key(const OriginCert& c, const std::filesystem::path& cert_file,
                        const std::filesystem::path& key_file);

}  // namespace testing_support
