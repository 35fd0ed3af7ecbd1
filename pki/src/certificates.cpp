#include "pki/certificates.hpp"

#include "ossl/der.hpp"
#include "ossl/error.hpp"

#include <openssl/ec.h>
#include <openssl/rand.h>

#include <stdexcept>

namespace pki {

namespace {

constexpr std::size_t kSerialBytes = 16;

void add_extension(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
    ossl::X509Ext ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value));
    if (!ext || X509_add_ext(cert, ext.get(), -1) != 1)
        throw ossl::Error(std::string("adding extension ") + OBJ_nid2sn(nid) + "=" + value);
}

// OpenSSL 3.0 cannot set a certificate's signature from outside, so the tbsCertificate
// is first completed with a throwaway software key of the same algorithm (which fixes
// the signature AlgorithmIdentifier inside it), then re-signed by the HSM and assembled.
ossl::PKey throwaway_key_like(std::span<const std::uint8_t> algorithm_identifier, const EVP_MD** md) {
    static const unsigned char kEcdsaSha256[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
    static const unsigned char kEcdsaSha384[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03};
    auto is = [&](const unsigned char* a, std::size_t n) {
        return algorithm_identifier.size() == n && std::equal(a, a + n, algorithm_identifier.begin());
    };
    if (is(kEcdsaSha256, sizeof kEcdsaSha256)) {
        *md = EVP_sha256();
        return ossl::PKey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    }
    if (is(kEcdsaSha384, sizeof kEcdsaSha384)) {
        *md = EVP_sha384();
        return ossl::PKey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384"));
    }
    *md = EVP_sha256();
    return ossl::PKey(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048)));
}

void set_random_serial(X509* cert) {
    unsigned char bytes[kSerialBytes];
    if (RAND_bytes(bytes, sizeof bytes) != 1) throw ossl::Error("RAND_bytes");
    bytes[0] &= 0x7f;  // positive
    bytes[0] |= 0x40;  // full length, no leading zero byte
    ossl::BigNum bn(BN_bin2bn(bytes, sizeof bytes, nullptr));
    if (!bn || BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert)) == nullptr) throw ossl::Error("serial");
}

}  // namespace

ossl::PKey public_key_from_der(std::span<const std::uint8_t> spki) {
    const unsigned char* p = spki.data();
    ossl::PKey key(d2i_PUBKEY(nullptr, &p, static_cast<long>(spki.size())));
    if (!key) throw ossl::Error("decoding a SubjectPublicKeyInfo");
    return key;
}

ossl::X509Ptr make_certificate(const CertificateRequest& req, pkcs11::Signer& signer) {
    ossl::X509Ptr cert(X509_new());
    if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1) throw ossl::Error("X509_new");
    set_random_serial(cert.get());

    ossl::X509Name name(X509_NAME_new());
    auto add_entry = [&](const char* field, const std::string& value) {
        if (!value.empty() &&
            X509_NAME_add_entry_by_txt(name.get(), field, MBSTRING_UTF8,
                                       reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1, 0) != 1)
            throw ossl::Error(std::string("setting ") + field);
    };
    add_entry("O", req.organization);
    if (req.profile == Profile::NodeIdentity) add_entry("OU", kNodeUnit);
    add_entry("CN", req.common_name);
    X509_set_subject_name(cert.get(), name.get());
    X509_set_issuer_name(cert.get(), req.issuer ? X509_get_subject_name(req.issuer) : name.get());

    const auto now = std::chrono::system_clock::now();
    const std::time_t nb = std::chrono::system_clock::to_time_t(now - req.backdate);
    const std::time_t na = std::chrono::system_clock::to_time_t(now + req.lifetime);
    if (!ASN1_TIME_set(X509_getm_notBefore(cert.get()), nb) || !ASN1_TIME_set(X509_getm_notAfter(cert.get()), na))
        throw ossl::Error("setting validity");
    if (X509_set_pubkey(cert.get(), req.subject_key.get()) != 1) throw ossl::Error("setting the public key");

    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, req.issuer ? const_cast<X509*>(req.issuer) : cert.get(), cert.get(), nullptr, nullptr, 0);
    switch (req.profile) {
        case Profile::Root:
            add_extension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE");
            add_extension(cert.get(), &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
            add_extension(cert.get(), &ctx, NID_subject_key_identifier, "hash");
            break;
        case Profile::Issuing:
            add_extension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
            add_extension(cert.get(), &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
            add_extension(cert.get(), &ctx, NID_ext_key_usage, "serverAuth");
            add_extension(cert.get(), &ctx, NID_subject_key_identifier, "hash");
            add_extension(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always");
            break;
        case Profile::Audit:
            add_extension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE");
            add_extension(cert.get(), &ctx, NID_key_usage, "critical,digitalSignature");
            add_extension(cert.get(), &ctx, NID_subject_key_identifier, "hash");
            break;
        case Profile::NodeIdentity:
            if (req.issuer == nullptr) throw std::invalid_argument("a node identity needs its issuer's certificate");
            add_extension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE");
            add_extension(cert.get(), &ctx, NID_key_usage, "critical,digitalSignature");
            add_extension(cert.get(), &ctx, NID_ext_key_usage, "clientAuth");
            add_extension(cert.get(), &ctx, NID_subject_key_identifier, "hash");
            add_extension(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always");
            break;
    }

    const EVP_MD* md = nullptr;
    ossl::PKey throwaway = throwaway_key_like(signer.algorithm_identifier(), &md);
    if (!throwaway || X509_sign(cert.get(), throwaway.get(), md) <= 0) throw ossl::Error("preparing tbsCertificate");
    unsigned char* tbs_raw = nullptr;
    int tbs_len = i2d_re_X509_tbs(cert.get(), &tbs_raw);
    if (tbs_len <= 0) throw ossl::Error("encoding tbsCertificate");
    ossl::Bytes tbs(tbs_raw, tbs_raw + tbs_len);
    OPENSSL_free(tbs_raw);

    ossl::Bytes signature = signer.sign(tbs);
    ossl::Bytes der_cert = der::certificate(tbs, signer.algorithm_identifier(), signature);
    const unsigned char* p = der_cert.data();
    ossl::X509Ptr signed_cert(d2i_X509(nullptr, &p, static_cast<long>(der_cert.size())));
    if (!signed_cert) throw ossl::Error("decoding the HSM-signed certificate");

    ossl::PKey issuer_key = public_key_from_der(signer.public_key_info());
    if (X509_verify(signed_cert.get(), issuer_key.get()) != 1)
        throw ossl::Error("the HSM signature on the new certificate does not verify");
    return signed_cert;
}

}  // namespace pki
