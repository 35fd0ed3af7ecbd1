#include "ossl/pem.hpp"

#include "ossl/digest.hpp"
#include "ossl/error.hpp"

#include <openssl/pem.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace ossl {

std::vector<X509Ptr> load_certificates(const std::filesystem::path& file) {
    Bio bio(BIO_new_file(file.c_str(), "r"));
    if (!bio) {
        drain_errors();
        throw std::runtime_error("cannot read certificate file " + file.string() +
                                 ": it does not exist or is not readable");
    }
    std::vector<X509Ptr> out;
    while (X509* c = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) out.emplace_back(c);
    drain_errors();  // the loop ends on a "no start line" error at EOF
    if (out.empty())
        throw std::runtime_error("certificate file " + file.string() + " holds no PEM certificate");
    return out;
}

X509Ptr load_certificate(const std::filesystem::path& file) {
    auto all = load_certificates(file);
    return std::move(all.front());
}

X509Ptr certificate_from_pem(std::string_view pem) {
    Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!cert) throw Error("parsing PEM certificate");
    return cert;
}

std::string to_pem(const X509& cert) {
    Bio bio(BIO_new(BIO_s_mem()));
    if (PEM_write_bio_X509(bio.get(), const_cast<X509*>(&cert)) != 1) throw Error("encoding PEM certificate");
    char* data = nullptr;
    long len = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(len));
}

std::string der_to_pem(std::span<const std::uint8_t> der, std::string_view label) {
    const std::string b64 = to_base64(der);
    std::string out;
    out.reserve(b64.size() + b64.size() / 64 + 64);
    out += "-----BEGIN ";
    out += label;
    out += "-----\n";
    for (std::size_t i = 0; i < b64.size(); i += 64) {
        out.append(b64, i, 64);
        out.push_back('\n');
    }
    out += "-----END ";
    out += label;
    out += "-----\n";
    return out;
}

Bytes to_der(const X509& cert) {
    int len = i2d_X509(&cert, nullptr);
    if (len <= 0) throw Error("encoding DER certificate");
    Bytes out(static_cast<std::size_t>(len));
    unsigned char* p = out.data();
    i2d_X509(&cert, &p);
    return out;
}

Bytes public_key_der(const EVP_PKEY& key) {
    int len = i2d_PUBKEY(const_cast<EVP_PKEY*>(&key), nullptr);
    if (len <= 0) throw Error("encoding a public key");
    Bytes out(static_cast<std::size_t>(len));
    unsigned char* p = out.data();
    if (i2d_PUBKEY(const_cast<EVP_PKEY*>(&key), &p) != len) throw Error("encoding a public key");
    return out;
}

std::string fingerprint_sha256(const X509& cert) {
    return to_hex(sha256(to_der(cert)));
}

std::string common_name(const X509& cert) { return subject_field(cert, NID_commonName); }

std::string subject_field(const X509& cert, int nid) {
    const X509_NAME* name = X509_get_subject_name(&cert);
    int idx = X509_NAME_get_index_by_NID(name, nid, -1);
    if (idx < 0) return {};
    const ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
    return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                       static_cast<std::size_t>(ASN1_STRING_length(s)));
}

namespace {
std::chrono::system_clock::time_point time_point_of(const ASN1_TIME* t) {
    int days = 0, seconds = 0;
    if (t == nullptr || ASN1_TIME_diff(&days, &seconds, nullptr, t) != 1)
        throw Error("reading a certificate's validity");
    return std::chrono::system_clock::now() + std::chrono::hours(24) * days + std::chrono::seconds(seconds);
}
}  // namespace

std::chrono::system_clock::time_point not_before(const X509& cert) { return time_point_of(X509_get0_notBefore(&cert)); }
std::chrono::system_clock::time_point not_after(const X509& cert) { return time_point_of(X509_get0_notAfter(&cert)); }

}  // namespace ossl
