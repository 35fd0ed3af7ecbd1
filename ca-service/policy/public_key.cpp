#include "policy/public_key.hpp"
#include "ossl/pem.hpp"

#include "ossl/error.hpp"
#include "ossl/handles.hpp"

#include <openssl/core_names.h>

#include <algorithm>
#include <array>
#include <climits>

namespace ca::policy {

namespace {

using protocol::Error;
using protocol::ErrorCode;

constexpr std::string_view kWhatIsAccepted = "use an EC P-256 or P-384 key, or RSA with at least ";

struct Curve {
    std::string_view openssl_name;
    std::string_view display_name;
};
constexpr std::array kAcceptedCurves = {Curve{"prime256v1", "P-256"}, Curve{"secp384r1", "P-384"}};

std::string accepted(unsigned min_rsa_bits) {
    return std::string(kWhatIsAccepted) + std::to_string(min_rsa_bits) + " bits";
}

std::variant<std::string, Error> check_ec(EVP_PKEY* key, unsigned min_rsa_bits) {
    std::array<char, 64> group{};
    std::size_t length = 0;
    if (EVP_PKEY_get_group_name(key, group.data(), group.size(), &length) != 1) {
        ossl::drain_errors();
        return Error{ErrorCode::weak_public_key,
                     "the EC key does not use a named curve (explicit parameters are not accepted); " +
                         accepted(min_rsa_bits)};
    }
    const std::string_view name(group.data(), length);
    const auto* curve = std::find_if(kAcceptedCurves.begin(), kAcceptedCurves.end(),
                                     [&](const Curve& c) { return c.openssl_name == name; });
    if (curve == kAcceptedCurves.end())
        return Error{ErrorCode::weak_public_key,
                     "EC curve " + std::string(name) + " is not accepted; " + accepted(min_rsa_bits)};
    // Decoding already put the point on the curve; this also refuses the point at infinity.
    // Cheap for EC (one scalar multiplication), unlike RSA's check, which tests primality.
    ossl::PKeyCtx check(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
    if (!check || EVP_PKEY_public_check(check.get()) != 1) {
        const std::string why = ossl::drain_errors();
        return Error{ErrorCode::invalid_public_key, "public_key is not a valid point on " +
                                                        std::string(curve->display_name) +
                                                        (why.empty() ? "" : " (" + why + ")")};
    }
    return "EC " + std::string(curve->display_name);
}

std::variant<std::string, Error> check_rsa(EVP_PKEY* key, unsigned min_rsa_bits) {
    const int bits = EVP_PKEY_get_bits(key);
    if (bits < 0 || static_cast<unsigned>(bits) < min_rsa_bits)
        return Error{ErrorCode::weak_public_key,
                     "RSA key of " + std::to_string(bits) + " bits is too weak; " + accepted(min_rsa_bits)};
    BIGNUM* raw_n = nullptr;
    BIGNUM* raw_e = nullptr;
    const bool read = EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &raw_n) == 1 &&
                      EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &raw_e) == 1;
    ossl::BigNum n(raw_n);
    ossl::BigNum e(raw_e);
    if (!read) {
        ossl::drain_errors();
        return Error{ErrorCode::invalid_public_key, "the RSA key's modulus or exponent cannot be read"};
    }
    if (!BN_is_odd(n.get()))
        return Error{ErrorCode::invalid_public_key,
                     "the RSA modulus is even, so it is not a product of two primes"};
    // RFC 8017 needs an odd exponent >= 3; clients reject e = 1 (no encryption at all).
    if (!BN_is_odd(e.get()) || BN_is_one(e.get()))
        return Error{
            ErrorCode::weak_public_key,
            "the RSA public exponent must be odd and at least 3 (65537 is usual); " + accepted(min_rsa_bits)};
    return "RSA " + std::to_string(bits);
}

}  // namespace

std::variant<AcceptedKey, Error> check_public_key(std::span<const std::uint8_t> der, unsigned min_rsa_bits) {
    if (der.empty() || der.size() > static_cast<std::size_t>(LONG_MAX))
        return Error{ErrorCode::invalid_public_key, "the public key is empty"};
    const unsigned char* cursor = der.data();
    ossl::PKey key(d2i_PUBKEY(nullptr, &cursor, static_cast<long>(der.size())));
    if (!key) {
        const std::string why = ossl::drain_errors();
        return Error{ErrorCode::invalid_public_key,
                     "public_key is not a DER SubjectPublicKeyInfo" + (why.empty() ? "" : " (" + why + ")") +
                         "; send e.g. the output of `openssl pkey -pubout -outform DER`"};
    }
    if (const auto used = static_cast<std::size_t>(cursor - der.data()); used != der.size())
        return Error{ErrorCode::invalid_public_key,
                     "public_key has " + std::to_string(der.size() - used) +
                         " bytes after the SubjectPublicKeyInfo; send it alone"};

    std::variant<std::string, Error> description;
    switch (EVP_PKEY_get_base_id(key.get())) {
        case EVP_PKEY_EC:
            description = check_ec(key.get(), min_rsa_bits);
            break;
        case EVP_PKEY_RSA:
            description = check_rsa(key.get(), min_rsa_bits);
            break;
        default: {
            const char* type = EVP_PKEY_get0_type_name(key.get());
            description =
                Error{ErrorCode::weak_public_key, "key type " + std::string(type ? type : "unknown") +
                                                      " is not accepted; " + accepted(min_rsa_bits)};
        }
    }
    if (auto* error = std::get_if<Error>(&description)) return std::move(*error);

    return AcceptedKey{ossl::public_key_der(*key), std::get<std::string>(std::move(description))};
}

std::variant<AcceptedKey, protocol::Error> AcceptedKeyCache::check(std::span<const std::uint8_t> der,
                                                                  unsigned min_rsa_bits) {
    std::string key(reinterpret_cast<const char*>(der.data()), der.size());
    key += '/' + std::to_string(min_rsa_bits);
    {
        std::lock_guard lock(mu_);
        if (auto it = accepted_.find(key); it != accepted_.end()) return it->second;
    }
    auto result = check_public_key(der, min_rsa_bits);
    if (const auto* accepted = std::get_if<AcceptedKey>(&result)) {
        std::lock_guard lock(mu_);
        if (accepted_.emplace(key, *accepted).second) {
            order_.push_back(std::move(key));
            if (order_.size() > capacity_) {
                accepted_.erase(order_.front());
                order_.pop_front();
            }
        }
    }
    return result;
}

}  // namespace ca::policy
