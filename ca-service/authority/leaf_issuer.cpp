#include "authority/leaf_issuer.hpp"

#include "ossl/der.hpp"
#include "ossl/digest.hpp"
#include "ossl/error.hpp"
#include "ossl/pem.hpp"

#include <openssl/rand.h>

#include <cstring>
#include <stdexcept>

namespace ca {

namespace {

using der::Bytes;

constexpr std::size_t kKeyIdBytes = 20;    // RFC 7093 method 1: leftmost 160 bits of SHA-256
constexpr std::size_t kMaxCommonName = 64;          // X.520 ub-common-name
constexpr std::size_t kMaxOrganizationalUnit = 64;  // X.520 ub-organizational-unit-name

// Extension encodings (RFC 5280 section 4.2).
const Bytes kBasicConstraintsLeaf = {0x30, 0x0c, 0x06, 0x03, 0x55, 0x1d, 0x13, 0x01, 0x01, 0xff, 0x04, 0x02, 0x30, 0x00};
const Bytes kKeyUsageDigitalSignature = {0x30, 0x0e, 0x06, 0x03, 0x55, 0x1d, 0x0f, 0x01, 0x01,
                                         0xff, 0x04, 0x04, 0x03, 0x02, 0x07, 0x80};
const Bytes kEkuServerAuth = {0x30, 0x13, 0x06, 0x03, 0x55, 0x1d, 0x25, 0x04, 0x0c, 0x30, 0x0a,
                              0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01};
const Bytes kOidSubjectAltName = {0x06, 0x03, 0x55, 0x1d, 0x11};
const Bytes kOidSubjectKeyId = {0x06, 0x03, 0x55, 0x1d, 0x0e};
const Bytes kOidAuthorityKeyId = {0x06, 0x03, 0x55, 0x1d, 0x23};
const Bytes kOidCommonName = {0x06, 0x03, 0x55, 0x04, 0x03};
const Bytes kOidOrganizationalUnit = {0x06, 0x03, 0x55, 0x04, 0x0b};
const Bytes kVersion3 = {0xa0, 0x03, 0x02, 0x01, 0x02};
const Bytes kCritical = {0x01, 0x01, 0xff};

void append(Bytes& out, der::Span s) { out.insert(out.end(), s.begin(), s.end()); }

Bytes extension(der::Span oid, bool critical, der::Span value) {
    Bytes octets = der::octet_string(value);
    Bytes content;
    append(content, oid);
    if (critical) append(content, kCritical);
    append(content, octets);
    return der::tlv(der::tag::kSequence, content);
}

}  // namespace

LeafIssuer::LeafIssuer(pkcs11::Signer& signer, const X509& issuing) : signer_(signer) {
    X509* cert = const_cast<X509*>(&issuing);
    ossl::PKey cert_key(X509_get_pubkey(cert));
    if (!cert_key) throw ossl::Error("reading the issuing CA certificate's key");
    const Bytes cert_spki = ossl::public_key_der(*cert_key);
    auto signer_spki = signer.public_key_info();
    if (!std::equal(cert_spki.begin(), cert_spki.end(), signer_spki.begin(), signer_spki.end()))
        throw std::runtime_error("the issuing certificate's public key is not the HSM issuing key's: "
                                 "ca.issuing_certificate and hsm.issuing_key do not belong together");

    unsigned char* name_der = nullptr;
    int name_len = i2d_X509_NAME(X509_get_subject_name(cert), &name_der);
    if (name_len <= 0) throw ossl::Error("encoding the issuer name");
    issuer_name_.assign(name_der, name_der + name_len);
    OPENSSL_free(name_der);

    const ASN1_OCTET_STRING* ski = X509_get0_subject_key_id(cert);
    if (ski == nullptr) throw std::runtime_error("the issuing CA certificate has no subjectKeyIdentifier");
    Bytes key_id = der::tlv(der::tag::context(0, false),
                            der::Span(ASN1_STRING_get0_data(ski), static_cast<std::size_t>(ASN1_STRING_length(ski))));
    Bytes aki_value = der::tlv(der::tag::kSequence, key_id);

    append(fixed_extensions_, kBasicConstraintsLeaf);
    append(fixed_extensions_, kKeyUsageDigitalSignature);
    append(fixed_extensions_, kEkuServerAuth);
    append(fixed_extensions_, extension(kOidAuthorityKeyId, false, aki_value));
}

Bytes LeafIssuer::next_serial() const {
    std::uint8_t bytes[kSerialBytes];
    {
        std::lock_guard lock(serial_mu_);
        if (serial_next_ == serial_pool_.size()) {
            if (RAND_bytes(serial_pool_.data(), static_cast<int>(serial_pool_.size())) != 1)
                throw ossl::Error("RAND_bytes for serial numbers");
            serial_next_ = 0;
        }
        std::memcpy(bytes, serial_pool_.data() + serial_next_, sizeof bytes);
        OPENSSL_cleanse(serial_pool_.data() + serial_next_, sizeof bytes);  // used once only
        serial_next_ += sizeof bytes;
    }
    bytes[0] &= 0x7f;  // positive
    bytes[0] |= 0x40;  // no leading zero octet: always 16 octets on the wire
    return Bytes(bytes, bytes + sizeof bytes);
}

IssuedLeaf LeafIssuer::issue(const LeafOrder& order) const {
    if (order.dns_names.empty() && order.ip_addresses.empty())
        throw std::invalid_argument("a leaf needs at least one name");
    auto key_bits = der::public_key_bits(order.public_key);
    if (!key_bits) throw std::invalid_argument("malformed SubjectPublicKeyInfo");

    const Bytes serial = next_serial();
    const Bytes serial_der = der::unsigned_integer(serial);
    const Bytes validity = [&] {
        Bytes nb = der::time(order.not_before);
        Bytes na = der::time(order.not_after);
        return der::sequence({nb, na});
    }();

    // Subject: OU = the node's name (who asked), CN = the first DNS name when it fits; with
    // no CN the SAN is critical.
    Bytes rdns;
    if (!order.node_name.empty() && order.node_name.size() <= kMaxOrganizationalUnit) {
        Bytes ou_value = der::tlv(der::tag::kUtf8String, ossl::as_bytes(order.node_name));
        der::append_tlv(rdns, der::tag::kSet, der::sequence({kOidOrganizationalUnit, ou_value}));
    }
    const bool has_cn = !order.dns_names.empty() && order.dns_names.front().size() <= kMaxCommonName;
    if (has_cn) {
        Bytes cn_value = der::tlv(der::tag::kUtf8String, ossl::as_bytes(order.dns_names.front()));
        der::append_tlv(rdns, der::tag::kSet, der::sequence({kOidCommonName, cn_value}));
    }
    const Bytes subject = der::tlv(der::tag::kSequence, rdns);

    Bytes general_names;
    for (const auto& name : order.dns_names) der::append_tlv(general_names, der::tag::context(2, false), ossl::as_bytes(name));
    for (const auto& ip : order.ip_addresses) {
        if (ip.size() != 4 && ip.size() != 16) throw std::invalid_argument("an IP address must be 4 or 16 bytes");
        der::append_tlv(general_names, der::tag::context(7, false), ip);
    }
    Bytes san_value = der::tlv(der::tag::kSequence, general_names);

    const auto key_hash = ossl::sha256(*key_bits);
    Bytes ski_value = der::octet_string(der::Span(key_hash.data(), kKeyIdBytes));

    Bytes extensions;
    extensions.reserve(fixed_extensions_.size() + san_value.size() + 64);
    append(extensions, fixed_extensions_);
    append(extensions, extension(kOidSubjectAltName, !has_cn, san_value));
    append(extensions, extension(kOidSubjectKeyId, false, ski_value));
    Bytes extensions_seq = der::tlv(der::tag::kSequence, extensions);
    Bytes extensions_field = der::tlv(der::tag::context(3, true), extensions_seq);

    const auto alg = signer_.algorithm_identifier();
    Bytes tbs = der::sequence(
        {kVersion3, serial_der, alg, issuer_name_, validity, subject, order.public_key, extensions_field});

    const Bytes signature = signer_.sign(tbs);
    IssuedLeaf out;
    out.der = der::certificate(tbs, alg, signature);
    out.pem = ossl::der_to_pem(out.der, "CERTIFICATE");
    out.serial_hex = ossl::to_hex(serial);
    return out;
}

}  // namespace ca
