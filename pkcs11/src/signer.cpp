#include "pkcs11/signer.hpp"

#include "ossl/error.hpp"
#include "ossl/pem.hpp"
#include "pkcs11/module.hpp"

#include <openssl/core_names.h>
#include <openssl/rsa.h>

#include <condition_variable>
#include <mutex>
#include <vector>

namespace pkcs11 {

namespace {

constexpr unsigned kMaxConcurrencyCeiling = 1024;

// Bounds HSM operations in flight. Blocks without spinning: std::counting_semaphore spins
// before sleeping, which with dozens of waiting request threads burns the CPU the HSM
// (SoftHSM runs in-process) needs.
class ConcurrencyLimit {
public:
    explicit ConcurrencyLimit(unsigned limit) : free_(limit) {}
    void acquire() {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return free_ > 0; });
        --free_;
    }
    void release() {
        {
            std::lock_guard lock(mu_);
            ++free_;
        }
        cv_.notify_one();
    }

private:
    std::mutex mu_;
    std::condition_variable cv_;
    unsigned free_;
};

// AlgorithmIdentifier DER encodings (RFC 5758 section 3.2, RFC 4055 section 5).
const Bytes kEcdsaSha256 = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
const Bytes kEcdsaSha384 = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03};
const Bytes kRsaSha256 = {0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7,
                          0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00};

struct Profile {
    Bytes algorithm_identifier;
    const char* digest;
    bool rsa;
};

Profile profile_for(EVP_PKEY* key, const std::string& uri) {
    if (EVP_PKEY_is_a(key, "EC")) {
        char group[64] = {};
        size_t len = 0;
        if (EVP_PKEY_get_group_name(key, group, sizeof group, &len) != 1)
            throw ossl::Error("reading the curve of " + uri);
        std::string_view g(group, len);
        if (g == "prime256v1" || g == "P-256") return {kEcdsaSha256, "SHA2-256", false};
        if (g == "secp384r1" || g == "P-384") return {kEcdsaSha384, "SHA2-384", false};
        throw std::runtime_error("key " + uri + " is on curve " + std::string(g) +
                                 "; supported curves are P-256 and P-384");
    }
    if (EVP_PKEY_is_a(key, "RSA")) {
        if (EVP_PKEY_get_bits(key) < 2048)
            throw std::runtime_error("RSA key " + uri + " has " + std::to_string(EVP_PKEY_get_bits(key)) +
                                     " bits; at least 2048 are required");
        return {kRsaSha256, "SHA2-256", true};
    }
    throw std::runtime_error("key " + uri + " is neither EC nor RSA");
}


}  // namespace

// One connection to the token: provider context, key handle and reusable operation contexts.
// Replaced wholesale when the token fails; threads still using the old one finish with it.
class Generation {
public:
    Generation(const SignerConfig& config)
        : context_(config.hsm), uri_(config.key.to_string()), key_(context_.load_private_key(config.key)) {
        if (!key_) throw std::runtime_error("no private key at " + uri_);
        profile_ = profile_for(key_.get(), uri_);
        md_.reset(EVP_MD_fetch(context_.libctx(), profile_.digest, "provider=default"));
        if (!md_) throw ossl::Error(std::string("fetching ") + profile_.digest);
        spki_ = ossl::public_key_der(*key_);
    }

    ~Generation() {
        for (EVP_PKEY_CTX* c : idle_) EVP_PKEY_CTX_free(c);
    }

    const Profile& profile() const { return profile_; }
    const Bytes& spki() const { return spki_; }

    // Throws HsmUnavailable on any failure.
    Bytes sign(std::span<const std::uint8_t> tbs) {
        unsigned char digest[EVP_MAX_MD_SIZE];
        unsigned int digest_len = 0;
        if (EVP_Digest(tbs.data(), tbs.size(), digest, &digest_len, md_.get(), nullptr) != 1)
            throw HsmUnavailable(ossl::Error("hashing the to-be-signed data").what());

        ossl::PKeyCtx ctx(take_ctx());
        if (!ctx || EVP_PKEY_sign_init(ctx.get()) != 1 ||
            (profile_.rsa && (EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) != 1 ||
                              EVP_PKEY_CTX_set_signature_md(ctx.get(), md_.get()) != 1)))
            throw HsmUnavailable(ossl::Error("starting a signature with " + uri_).what());
        size_t len = 0;
        if (EVP_PKEY_sign(ctx.get(), nullptr, &len, digest, digest_len) != 1)
            throw HsmUnavailable(ossl::Error("sizing a signature with " + uri_).what());
        Bytes sig(len);
        if (EVP_PKEY_sign(ctx.get(), sig.data(), &len, digest, digest_len) != 1)
            throw HsmUnavailable(ossl::Error("signing with " + uri_).what());
        sig.resize(len);
        give_back(std::move(ctx));
        return sig;
    }

private:
    EVP_PKEY_CTX* take_ctx() {
        {
            std::lock_guard lock(mu_);
            if (!idle_.empty()) {
                EVP_PKEY_CTX* c = idle_.back();
                idle_.pop_back();
                return c;
            }
        }
        return EVP_PKEY_CTX_new_from_pkey(context_.libctx(), key_.get(), nullptr);
    }
    void give_back(ossl::PKeyCtx ctx) {
        std::lock_guard lock(mu_);
        idle_.push_back(ctx.release());
    }

    ProviderContext context_;
    std::string uri_;
    ossl::PKey key_;
    Profile profile_;
    ossl::Md md_;
    Bytes spki_;
    std::mutex mu_;
    std::vector<EVP_PKEY_CTX*> idle_;
};

struct HsmSigner::State {
    explicit State(SignerConfig c)
        : config(std::move(c)), slots(config.max_concurrent_operations) {}

    SignerConfig config;
    ConcurrencyLimit slots;
    Bytes algorithm_identifier;  // fixed at construction: a reconnect must find the same key
    Bytes spki;

    mutable std::mutex mu;
    std::shared_ptr<Generation> current;
    std::string last_error;
    std::chrono::steady_clock::time_point last_attempt{};
    std::uint64_t reconnects = 0;

    std::shared_ptr<Generation> acquire() {
        std::lock_guard lock(mu);
        if (current) return current;
        auto now = std::chrono::steady_clock::now();
        if (now - last_attempt < config.reconnect_interval)
            throw HsmUnavailable("HSM unavailable: " + last_error);
        last_attempt = now;
        try {
            if (config.hsm.reinitialize_on_reconnect) Module(config.hsm.module).reinitialize();
            auto fresh = std::make_shared<Generation>(config);
            if (fresh->spki() != spki)
                throw std::runtime_error("the key at " + config.key.to_string() +
                                         " changed since start-up; refusing to sign with a different key");
            current = std::move(fresh);
            ++reconnects;
            last_error.clear();
            return current;
        } catch (const std::exception& e) {
            last_error = e.what();
            throw HsmUnavailable("HSM unavailable: " + last_error);
        }
    }

    void fail(const std::shared_ptr<Generation>& gen, const std::string& why) {
        std::lock_guard lock(mu);
        if (current == gen) current.reset();
        last_error = why;
    }
};

HsmSigner::HsmSigner(SignerConfig config) {
    if (config.max_concurrent_operations == 0 || config.max_concurrent_operations > kMaxConcurrencyCeiling)
        throw std::invalid_argument("max_concurrent_operations must be between 1 and " +
                                    std::to_string(kMaxConcurrencyCeiling));
    state_ = std::make_unique<State>(std::move(config));
    auto first = std::make_shared<Generation>(state_->config);
    state_->algorithm_identifier = first->profile().algorithm_identifier;
    state_->spki = first->spki();
    state_->current = std::move(first);
}

HsmSigner::~HsmSigner() = default;

std::span<const std::uint8_t> HsmSigner::algorithm_identifier() const { return state_->algorithm_identifier; }
std::span<const std::uint8_t> HsmSigner::public_key_info() const { return state_->spki; }

Bytes HsmSigner::sign(std::span<const std::uint8_t> tbs) {
    state_->slots.acquire();
    struct Release {
        ConcurrencyLimit& s;
        ~Release() { s.release(); }
    } release{state_->slots};

    // A session invalidated underneath us fails once; rebuild and retry that request once
    // before reporting the HSM unavailable.
    for (int attempt = 0;; ++attempt) {
        auto gen = state_->acquire();
        try {
            return gen->sign(tbs);
        } catch (const HsmUnavailable& e) {
            state_->fail(gen, e.what());
            if (attempt == 0) {
                std::lock_guard lock(state_->mu);
                state_->last_attempt = {};  // retry immediately, once
                continue;
            }
            throw HsmUnavailable(std::string("HSM unavailable: ") + e.what());
        }
    }
}

SignerHealth HsmSigner::health() const {
    std::lock_guard lock(state_->mu);
    SignerHealth h;
    h.available = static_cast<bool>(state_->current);
    h.last_error = state_->last_error;
    h.reconnects = state_->reconnects;
    return h;
}

}  // namespace pkcs11
