#include "authority/client_identity.hpp"

#include "ossl/digest.hpp"
#include "ossl/error.hpp"
#include "ossl/pem.hpp"

#include <openssl/x509v3.h>

#include <stdexcept>

namespace ca {

namespace {
constexpr std::size_t kCacheCapacity = 4096;  // distinct client certificates; cleared when full
}

std::optional<NodeIdentity> identity_from_certificate(const X509& certificate) {
    NodeIdentity id;
    id.name = ossl::common_name(certificate);
    id.fingerprint = ossl::fingerprint_sha256(certificate);
    id.admin = ossl::subject_field(certificate, NID_organizationalUnitName) == kAdminUnit;
    if (id.name.empty()) return std::nullopt;
    return id;
}

ClientVerifier::ClientVerifier(const std::filesystem::path& service_ca, const std::filesystem::path& node_identity_ca)
    : store_(X509_STORE_new()) {
    if (!store_ || X509_STORE_load_file(store_.get(), service_ca.c_str()) != 1)
        throw std::runtime_error(ossl::Error("loading the service CA " + service_ca.string()).what());
    if (!node_identity_ca.empty() && X509_STORE_load_file(store_.get(), node_identity_ca.c_str()) != 1)
        throw std::runtime_error(ossl::Error("loading the node-identity CA " + node_identity_ca.string()).what());
}

std::variant<NodeIdentity, protocol::Error> ClientVerifier::verify(std::span<const std::uint8_t> der) {
    const auto unauthenticated = [](const std::string& why) {
        return protocol::Error{protocol::ErrorCode::unauthenticated, "client certificate refused by the signer: " + why};
    };
    const std::string fingerprint = ossl::to_hex(ossl::sha256(der));
    const auto now = std::chrono::system_clock::now();
    {
        std::lock_guard lock(mu_);
        if (auto it = cache_.find(fingerprint); it != cache_.end() && now < it->second.not_after)
            return it->second.identity;
    }
    const unsigned char* p = der.data();
    ossl::X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
    if (!cert || p != der.data() + der.size()) return unauthenticated("not one DER certificate");
    ossl::X509StoreCtx ctx(X509_STORE_CTX_new());
    if (!ctx || X509_STORE_CTX_init(ctx.get(), store_.get(), cert.get(), nullptr) != 1)
        throw std::runtime_error(ossl::Error("preparing a certificate verification").what());
    X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_CLIENT);
    X509_VERIFY_PARAM_set_depth(X509_STORE_CTX_get0_param(ctx.get()), kClientVerifyDepth);
    if (X509_verify_cert(ctx.get()) != 1)
        return unauthenticated(X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get())));
    auto id = identity_from_certificate(*cert);
    if (!id) return unauthenticated("no subject CN");
    // leaf, service CA: issued by the service CA itself; anything longer came through the
    // node-identity CA.
    if (sk_X509_num(X509_STORE_CTX_get0_chain(ctx.get())) != 2) id->admin = false;
    const auto not_after = ossl::not_after(*cert);
    std::lock_guard lock(mu_);
    if (cache_.size() >= kCacheCapacity) cache_.clear();
    cache_[fingerprint] = {*id, not_after};
    return *id;
}

}  // namespace ca
