#include "audit/checkpoint.hpp"
#include "ossl/pem.hpp"

#include "ossl/encoding.hpp"
#include "ossl/error.hpp"

#include <openssl/evp.h>

#include <stdexcept>

namespace ca::audit {

namespace {
constexpr std::string_view kStatementHeader = "splitca audit checkpoint v1\n";
}  // namespace

std::string statement_text(const CheckpointStatement& s) {
    std::string out(kStatementHeader);
    out += "tree_size " + std::to_string(s.tree_size) + "\n";
    out += "head " + ossl::to_hex(s.head) + "\n";
    out += "merkle_root " + ossl::to_hex(s.merkle_root) + "\n";
    out += "signed_at " + s.signed_at + "\n";
    return out;
}

CheckpointVerifier::CheckpointVerifier(const X509& cert) {
    EVP_PKEY* key = X509_get_pubkey(const_cast<X509*>(&cert));
    if (key == nullptr) throw ossl::Error("reading the public key of the audit certificate");
    key_.reset(key);

    if (EVP_PKEY_is_a(key, "EC")) {
        char group[64] = {};
        size_t len = 0;
        if (EVP_PKEY_get_group_name(key, group, sizeof group, &len) != 1)
            throw ossl::Error("reading the curve of the audit certificate's key");
        const std::string_view g(group, len);
        if (g == "prime256v1" || g == "P-256")
            md_ = EVP_sha256();
        else if (g == "secp384r1" || g == "P-384")
            md_ = EVP_sha384();
        else
            throw std::runtime_error("the audit certificate's key is on curve " + std::string(g) +
                                     "; checkpoints are signed with P-256, P-384 or RSA keys");
    } else if (EVP_PKEY_is_a(key, "RSA")) {
        md_ = EVP_sha256();
    } else {
        throw std::runtime_error(
            "the audit certificate's key is neither EC nor RSA; "
            "is this the audit certificate made by hsm-setup?");
    }

    spki_sha256_ = ossl::to_hex(ossl::sha256(ossl::public_key_der(*key)));
}

bool CheckpointVerifier::verify(const std::string& statement, std::span<const std::uint8_t> signature) const {
    ossl::MdCtx ctx(EVP_MD_CTX_new());
    if (!ctx) throw ossl::Error("allocating a digest context");
    // RSA keys default to PKCS#1 v1.5 padding, which is what HsmSigner produces.
    if (EVP_DigestVerifyInit(ctx.get(), nullptr, md_, nullptr, key_.get()) != 1)
        throw ossl::Error("starting checkpoint signature verification");
    const int rc =
        EVP_DigestVerify(ctx.get(), signature.data(), signature.size(),
                         reinterpret_cast<const unsigned char*>(statement.data()), statement.size());
    ossl::drain_errors();  // a bad signature leaves decoding errors we do not report
    return rc == 1;
}

}  // namespace ca::audit
