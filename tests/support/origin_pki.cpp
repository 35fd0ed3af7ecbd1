#include "support/origin_pki.hpp"

#include "ossl/error.hpp"
#include "ossl/pem.hpp"

#include <openssl/pem.h>
#include <openssl/rand.h>

#include <arpa/inet.h>

#include <fstream>
#include <stdexcept>

namespace testing_support {

namespace {

ossl::PKey make_key(KeyKind kind) {
    EVP_PKEY* k = nullptr;
    switch (kind) {
        case KeyKind::ec_p256: k = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"); break;
        case KeyKind::rsa2048: k = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048)); break;
        case KeyKind::rsa1024: k = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(1024)); break;
    }
    if (k == nullptr) throw ossl::Error("test key generation");
    return ossl::PKey(k);
}

void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    ossl::X509Ext ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
    if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) throw ossl::Error("adding extension " + value);
}

OriginCert build(const std::string& cn, const CertSpec& spec, const OriginCert* issuer, bool ca) {
    OriginCert out;
    out.key = make_key(spec.key);
    out.cert.reset(X509_new());
    X509* c = out.cert.get();
    X509_set_version(c, X509_VERSION_3);
    unsigned char serial[16];
    RAND_bytes(serial, sizeof serial);
    serial[0] &= 0x7f;
    ossl::BigNum bn(BN_bin2bn(serial, sizeof serial, nullptr));
    BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(c));
    const std::time_t now = std::time(nullptr);
    ASN1_TIME_set(X509_getm_notBefore(c), now + spec.not_before_offset.count());
    ASN1_TIME_set(X509_getm_notAfter(c), now + spec.not_after_offset.count());
    X509_NAME* name = X509_get_subject_name(c);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
    X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer->cert.get()) : name);
    X509_set_pubkey(c, out.key.get());
    X509* issuer_cert = issuer ? issuer->cert.get() : c;
    add_ext(c, issuer_cert, NID_subject_key_identifier, "hash");
    if (ca) {
        add_ext(c, issuer_cert, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(c, issuer_cert, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_ext(c, issuer_cert, NID_authority_key_identifier, "keyid");
        add_ext(c, issuer_cert, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(c, issuer_cert, NID_key_usage, "critical,digitalSignature,keyEncipherment");
        add_ext(c, issuer_cert, NID_ext_key_usage, "serverAuth");
        std::string san;
        for (const auto& d : spec.dns_names) san += (san.empty() ? "" : ",") + std::string("DNS:") + d;
        for (const auto& ip : spec.ip_addresses) san += (san.empty() ? "" : ",") + std::string("IP:") + ip;
        if (!san.empty()) add_ext(c, issuer_cert, NID_subject_alt_name, san);
    }
    EVP_PKEY* signing_key = issuer ? issuer->key.get() : out.key.get();
    ossl::Md md(EVP_MD_fetch(nullptr, spec.digest, nullptr));
    if (!md || X509_sign(c, signing_key, md.get()) <= 0) throw ossl::Error("signing a test certificate");
    return out;
}

}  // namespace

CertSpec valid_for(std::vector<std::string> names) {
    CertSpec s;
    s.dns_names = std::move(names);
    return s;
}

OriginPki::OriginPki() {
    CertSpec root_spec;
    root_spec.not_after_offset = std::chrono::seconds(3650LL * 86400);
    root_ = build("test origin root", root_spec, nullptr, true);
    unknown_root_ = build("unknown test root", root_spec, nullptr, true);
}

OriginCert OriginPki::issue(const CertSpec& spec) const {
    const std::string cn = !spec.subject_cn.empty() ? spec.subject_cn
                         : spec.dns_names.empty() ? (spec.ip_addresses.empty() ? "origin" : spec.ip_addresses[0])
                                                  : spec.dns_names[0];
    switch (spec.issuer) {
        case IssuerKind::origin_root: return build(cn, spec, &root_, false);
        case IssuerKind::unknown_root: return build(cn, spec, &unknown_root_, false);
        case IssuerKind::self_signed: return build(cn, spec, nullptr, false);
    }
    throw std::logic_error("issuer kind");
}

void OriginPki::write_root(const std::filesystem::path& file) const {
    std::ofstream(file) << ossl::to_pem(*root_.cert);
}

void write_cert_and_key(const OriginCert& c, const std::filesystem::path& cert_file,
                        const std::filesystem::path& key_file) {
    std::ofstream(cert_file) << ossl::to_pem(*c.cert);
    ossl::Bio bio(BIO_new(BIO_s_mem()));
    PEM_write_bio_PrivateKey(bio.get(), c.key.get(), nullptr, nullptr, 0, nullptr, nullptr);
    char* data = nullptr;
    long len = BIO_get_mem_data(bio.get(), &data);
    std::ofstream(key_file) << std::string(data, static_cast<std::size_t>(len));
}

}  // namespace testing_support
