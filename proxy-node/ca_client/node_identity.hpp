#pragma once
// The node's own mTLS identity on disk (certificate chain and private key) and its renewal:
// a fresh P-256 key made here, a CSR for it, and the certificate the ca-service returns,
// checked and then installed atomically. The key file is written with mode 0600 and
// synced before it replaces the old one; so is the certificate.
//
// Install order: write key.new and cert.new (synced), rename the key, rename the
// certificate, sync the directory. A crash in between leaves cert.new beside a new key:
// recover_interrupted_renewal() finishes it at the next start. Both .new files present
// means the renewal never took effect: they are removed and the old pair stays.

#include "ossl/encoding.hpp"
#include "ossl/handles.hpp"

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

namespace proxy {

struct IdentityFiles {
    std::filesystem::path certificate;  // PEM: the identity, then the CA(s) that issued it
    std::filesystem::path private_key;  // PEM, mode 0600
};

struct IdentityInfo {
    std::string name;  // subject CN
    std::chrono::system_clock::time_point not_before;
    std::chrono::system_clock::time_point not_after;
};

// Reads the certificate file's first certificate. Throws std::runtime_error naming the file.
IdentityInfo read_identity(const IdentityFiles& files);

// Finishes or discards an interrupted install (see above); returns what it did, for the
// log, or an empty string when there was nothing to do.
std::string recover_interrupted_renewal(const IdentityFiles& files);

struct RenewalRequest {
    ossl::PKey key;   // the new private key, in memory until installed
    ossl::Bytes csr;  // DER PKCS#10 for it, subject CN = name
};
RenewalRequest make_renewal_request(const std::string& name);

// Checks the returned chain before anything is written: it parses, its first certificate
// carries the new key and the same name, and it verifies for TLS client use against
// `service_ca`. Returns the problem, or nullopt when it is good.
std::optional<std::string> check_renewed_identity(const std::string& chain_pem, const EVP_PKEY& new_key,
                                                  const std::string& name, const std::filesystem::path& service_ca);

// Writes and swaps in the new pair (see the install order above). Throws std::runtime_error
// with the file and errno when a write fails; the old pair is then untouched.
void install_identity(const IdentityFiles& files, const EVP_PKEY& key, const std::string& chain_pem);

}  // namespace proxy
