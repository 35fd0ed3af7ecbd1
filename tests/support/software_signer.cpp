#include "support/software_signer.hpp"

#include "ossl/error.hpp"
#include "ossl/pem.hpp"

#include <openssl/ec.h>

#include <fstream>
#include <stdexcept>

namespace testing_support {

namespace {

// ecdsa-with-SHA256 (RFC 5758 section 3.2), the same bytes HsmSigner uses for P-256.
const pkcs11::Bytes kEcdsaSha256 = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
constexpr long kCertificateLifetimeSeconds = 24 * 3600;

ossl::X509Ptr self_signed(EVP_PKEY* key) {
    ossl::X509Ptr cert(X509_new());
    if (!cert) throw ossl::Error("allocating a certificate");
    X509_set_version(cert.get(), X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), kCertificateLifetimeSeconds);
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("unit-test audit key"), -1, -1, 0);
    X509_set_issuer_name(cert.get(), name);
    if (X509_set_pubkey(cert.get(), key) != 1 || X509_sign(cert.get(), key, EVP_sha256()) <= 0)
        throw ossl::Error("self-signing the test audit certificate");
    return cert;
}

}  // namespace

SoftwareSigner::SoftwareSigner() {
    key_.reset(EVP_EC_gen("P-256"));
    if (!key_) throw ossl::Error("generating a P-256 test key");
    spki_ = ossl::public_key_der(*key_);
    certificate_ = self_signed(key_.get());
}

std::span<const std::uint8_t> SoftwareSigner::algorithm_identifier() const {
    return kEcdsaSha256;
}
std::span<const std::uint8_t> SoftwareSigner::public_key_info() const {
    return spki_;
}

pkcs11::Bytes SoftwareSigner::sign(std::span<const std::uint8_t> tbs) {
    if (!available_) throw pkcs11::HsmUnavailable("test signer switched off (simulated HSM outage)");
    ossl::MdCtx ctx(EVP_MD_CTX_new());
    size_t len = 0;
    if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_.get()) != 1 ||
        EVP_DigestSign(ctx.get(), nullptr, &len, tbs.data(), tbs.size()) != 1)
        throw ossl::Error("starting a test signature");
    pkcs11::Bytes sig(len);
    if (EVP_DigestSign(ctx.get(), sig.data(), &len, tbs.data(), tbs.size()) != 1)
        throw ossl::Error("signing with the test key");
    sig.resize(len);
    ++signatures_;
    return sig;
}

std::string SoftwareSigner::certificate_pem() const {
    return ossl::to_pem(*certificate_);
}

void SoftwareSigner::write_certificate_pem(const std::filesystem::path& file) const {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out << certificate_pem();
    if (!out) throw std::runtime_error("cannot write " + file.string());
}

}  // namespace testing_support
