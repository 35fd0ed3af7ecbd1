#include "pkcs11/provider.hpp"

#include "ossl/error.hpp"
#include "pkcs11/module.hpp"

#include <openssl/provider.h>
#include <openssl/ui.h>

#include <cctype>
#include <stdexcept>

namespace pkcs11 {

namespace {

// OpenSSL config values treat '$', '#', '\\', quotes and spaces specially; escape every
// non-alphanumeric byte so any PIN survives verbatim.
std::string conf_escape(std::string_view v) {
    std::string out;
    for (char c : v) {
        if (!std::isalnum(static_cast<unsigned char>(c))) out.push_back('\\');
        out.push_back(c);
    }
    return out;
}

void wipe(std::string& s) {
    ::explicit_bzero(s.data(), s.size());
    s.clear();
}

int store_type_for(const char* type) {
    std::string_view t(type);
    if (t == "private") return OSSL_STORE_INFO_PKEY;
    if (t == "public") return OSSL_STORE_INFO_PUBKEY;
    return OSSL_STORE_INFO_CERT;
}

}  // namespace

std::filesystem::path default_provider_module() { return SPLITCA_PKCS11_PROVIDER; }

ProviderContext::ProviderContext(const HsmConfig& config) : config_(config) {
    if (config_.provider_module.empty()) config_.provider_module = default_provider_module();
    if (!std::filesystem::exists(config_.provider_module))
        throw std::runtime_error("pkcs11-provider module " + config_.provider_module.string() +
                                 " is missing; install the pkcs11-provider package (bookworm-backports)");

    std::string pin = read_pin(config_.pin);
    try {
        // Direct probe: a precise error for missing module, unknown token, wrong PIN.
        Module module(config_.module);
        CK_SLOT_ID slot = module.slot_for_token(config_.token_label);
        Session session(module, slot);
        session.login(pin, config_.token_label);
    } catch (...) {
        wipe(pin);
        throw;
    }

    std::string text =
        "openssl_conf = openssl_init\n"
        "[openssl_init]\n"
        "providers = provider_sect\n"
        "[provider_sect]\n"
        "default = default_sect\n"
        "pkcs11 = pkcs11_sect\n"
        "[default_sect]\n"
        "activate = 1\n"
        "[pkcs11_sect]\n"
        "module = " + conf_escape(config_.provider_module.string()) + "\n"
        "pkcs11-module-path = " + conf_escape(config_.module.string()) + "\n"
        "pkcs11-module-token-pin = " + conf_escape(pin) + "\n"
        "pkcs11-module-load-behavior = early\n" +
        (config_.quirks.empty() ? "" : "pkcs11-module-quirks = " + conf_escape(config_.quirks) + "\n") +
        "activate = 1\n";
    wipe(pin);

    libctx_.reset(OSSL_LIB_CTX_new());
    if (!libctx_) throw ossl::Error("OSSL_LIB_CTX_new");
    ossl::Conf conf(NCONF_new_ex(libctx_.get(), nullptr));
    ossl::Bio bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
    long bad_line = 0;
    bool ok = conf && bio && NCONF_load_bio(conf.get(), bio.get(), &bad_line) > 0 &&
              CONF_modules_load(conf.get(), nullptr, 0) > 0;
    wipe(text);
    if (!ok || OSSL_PROVIDER_available(libctx_.get(), "pkcs11") != 1)
        throw ossl::Error("loading pkcs11-provider for module " + config_.module.string());
}

ProviderContext::~ProviderContext() { ossl::drain_errors(); }

namespace {

struct Loaded {
    ossl::PKey key;
    ossl::X509Ptr cert;
};

// A UI that answers no prompt: the PIN comes from configuration, and a daemon must never
// fall back to asking on a terminal (OpenSSL's default UI reads /dev/tty).
int refuse_prompt(UI*, UI_STRING*) { return 0; }

using UiMethod = ossl::Owned<UI_METHOD, UI_destroy_method>;

Loaded load(OSSL_LIB_CTX* libctx, const Uri& uri, const char* type) {
    Uri want = uri;
    want.type = type;
    const std::string text = want.to_string();
    UiMethod no_prompts(UI_create_method("splitca: no interactive prompts"));
    if (!no_prompts || UI_method_set_reader(no_prompts.get(), refuse_prompt) != 0)
        throw ossl::Error("creating a non-interactive UI method");
    ossl::Store store(OSSL_STORE_open_ex(text.c_str(), libctx, "provider=pkcs11", no_prompts.get(), nullptr,
                                         nullptr, nullptr, nullptr));
    if (!store) throw ossl::Error("opening " + text);
    OSSL_STORE_expect(store.get(), store_type_for(type));
    Loaded out;
    while (!OSSL_STORE_eof(store.get())) {
        ossl::StoreInfo info(OSSL_STORE_load(store.get()));
        if (!info) break;
        switch (OSSL_STORE_INFO_get_type(info.get())) {
            case OSSL_STORE_INFO_PKEY:
                if (!out.key) out.key.reset(OSSL_STORE_INFO_get1_PKEY(info.get()));
                break;
            case OSSL_STORE_INFO_PUBKEY:
                if (!out.key) out.key.reset(OSSL_STORE_INFO_get1_PUBKEY(info.get()));
                break;
            case OSSL_STORE_INFO_CERT:
                if (!out.cert) out.cert.reset(OSSL_STORE_INFO_get1_CERT(info.get()));
                break;
            default:
                break;
        }
    }
    std::string queue = ossl::drain_errors();
    if (!out.key && !out.cert)
        throw std::runtime_error("no " + std::string(type) + " object at " + text + " on the token" +
                                 (queue.empty() ? "" : " (" + queue + ")"));
    return out;
}

}  // namespace

ossl::PKey ProviderContext::load_private_key(const Uri& uri) const {
    return std::move(load(libctx_.get(), uri, "private").key);
}
ossl::PKey ProviderContext::load_public_key(const Uri& uri) const {
    return std::move(load(libctx_.get(), uri, "public").key);
}
ossl::X509Ptr ProviderContext::load_certificate(const Uri& uri) const {
    return std::move(load(libctx_.get(), uri, "cert").cert);
}

}  // namespace pkcs11
