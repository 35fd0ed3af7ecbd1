// Public keys for the policy tests, as DER SubjectPublicKeyInfo. Declared where used
// (policy_public_key_tests.cpp, policy_issuance_tests.cpp).

#include "ossl/encoding.hpp"
#include "ossl/pem.hpp"
#include "ossl/error.hpp"
#include "ossl/handles.hpp"

#include <openssl/core_names.h>
#include <openssl/param_build.h>

#include <map>
#include <mutex>

namespace test_keys {

namespace {

using ParamBld = ossl::Owned<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free>;
using Params = ossl::Owned<OSSL_PARAM, OSSL_PARAM_free>;

ossl::Bytes spki(const ossl::PKey& key) { return ossl::public_key_der(*key); }

}  // namespace

ossl::Bytes generated(const std::string& type, const std::string& arg) {
    // RSA generation is slow: each key once per test run.
    static std::mutex mutex;
    static std::map<std::string, ossl::Bytes> cache;
    std::lock_guard lock(mutex);
    auto& der = cache[type + "/" + arg];
    if (der.empty()) {
        ossl::PKey key(type == "RSA"
                           ? EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(std::stoul(arg)))
                       : type == "EC" ? EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", arg.c_str())
                                      : EVP_PKEY_Q_keygen(nullptr, nullptr, type.c_str()));
        if (!key) throw ossl::Error("generating a " + type + " test key");
        der = spki(key);
    }
    return der;
}

// An RSA public key from raw parts, for exponents and moduli no key generator produces.
ossl::Bytes rsa_from_parts(const ossl::Bytes& modulus, unsigned long exponent) {
    ossl::BigNum n(BN_bin2bn(modulus.data(), static_cast<int>(modulus.size()), nullptr));
    ossl::BigNum e(BN_new());
    BN_set_word(e.get(), exponent);
    ParamBld bld(OSSL_PARAM_BLD_new());
    OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get());
    OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get());
    Params params(OSSL_PARAM_BLD_to_param(bld.get()));
    ossl::PKeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr));
    EVP_PKEY* raw = nullptr;
    if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
        EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1)
        throw ossl::Error("building an RSA test key");
    return spki(ossl::PKey(raw));
}

}  // namespace test_keys
