#pragma once
// Reading and writing certificates (and public keys) as PEM/DER.

#include "ossl/encoding.hpp"
#include "ossl/handles.hpp"

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace ossl {

// All certificates in a PEM file, in order. Throws with the file name when the file is
// missing, unreadable or holds no certificate.
std::vector<X509Ptr> load_certificates(const std::filesystem::path& file);
X509Ptr load_certificate(const std::filesystem::path& file);

X509Ptr certificate_from_pem(std::string_view pem);
std::string to_pem(const X509& cert);
std::string der_to_pem(std::span<const std::uint8_t> der, std::string_view label);
Bytes to_der(const X509& cert);

// DER SubjectPublicKeyInfo of a key (the public half only). Throws ossl::Error.
Bytes public_key_der(const EVP_PKEY& key);

// SHA-256 over the DER encoding, lower-case hex.
std::string fingerprint_sha256(const X509& cert);

// The first subject attribute with this NID (e.g. NID_organizationalUnitName), or "".
std::string subject_field(const X509& cert, int nid);
// Subject common name, or "" if there is none.
std::string common_name(const X509& cert);

// A certificate's notBefore / notAfter as a time point. Throws ossl::Error.
std::chrono::system_clock::time_point not_before(const X509& cert);
std::chrono::system_clock::time_point not_after(const X509& cert);

}  // namespace ossl
