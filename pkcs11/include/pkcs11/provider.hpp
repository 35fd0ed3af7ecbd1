#pragma once
// pkcs11-provider loaded into a private OpenSSL library context.
//
// Never the default context: SoftHSM itself calls into OpenSSL's default context while
// holding its own lock, so a provider loaded there can deadlock. Everything that uses the
// token's keys goes through the private context this class owns.

#include "ossl/handles.hpp"
#include "pkcs11/pin.hpp"
#include "pkcs11/uri.hpp"

#include <filesystem>
#include <string>

namespace pkcs11 {

struct HsmConfig {
    std::filesystem::path module;           // the PKCS#11 module (.so)
    std::string token_label;                // token holding the keys
    PinSource pin;                          // the token's user PIN
    std::filesystem::path provider_module;  // pkcs11-provider; empty = the build's default
    // pkcs11-provider quirks; SoftHSM needs "no-deinit" (it crashes in C_Finalize at exit).
    std::string quirks = "no-deinit";
    // Before reconnecting after a failure, finalise and re-initialise the module. Needed by
    // remote modules (network HSMs, p11-kit-client) to reconnect; never for in-process
    // SoftHSM, which does not survive C_Finalize under a loaded provider.
    bool reinitialize_on_reconnect = false;
};

class ProviderContext {
public:
    // Checks module, token and PIN with direct Cryptoki calls first (so a missing module,
    // an unknown label or a wrong PIN gets a precise message), then loads the provider.
    explicit ProviderContext(const HsmConfig& config);
    ~ProviderContext();
    ProviderContext(const ProviderContext&) = delete;
    ProviderContext& operator=(const ProviderContext&) = delete;

    OSSL_LIB_CTX* libctx() const noexcept { return libctx_.get(); }
    const HsmConfig& config() const noexcept { return config_; }

    // Objects by RFC 7512 URI; throw std::runtime_error naming the URI when absent.
    ossl::PKey load_private_key(const Uri& uri) const;
    ossl::PKey load_public_key(const Uri& uri) const;
    ossl::X509Ptr load_certificate(const Uri& uri) const;

private:
    HsmConfig config_;
    ossl::LibCtx libctx_;
};

// Directory of the build's pkcs11-provider module.
std::filesystem::path default_provider_module();

}  // namespace pkcs11
