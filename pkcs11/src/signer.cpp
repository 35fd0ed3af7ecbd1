#include "pkcs11/signer.hpp"

#include "ossl/error.hpp"
#include "ossl/pem.hpp"
#include "pkcs11/module.hpp"

#include <openssl/core_names.h>
#include <openssl/rsa.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
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

// rsaEncryption signatures over SHA-256 sign this DigestInfo prefix plus the digest
// (RFC 8017 section 9.2, note 1).
constexpr std::uint8_t kSha256DigestInfo[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                              0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};

// A DER INTEGER holding the unsigned big-endian `v`.
void append_der_integer(Bytes& out, std::span<const std::uint8_t> v) {
    while (v.size() > 1 && v.front() == 0) v = v.subspan(1);
    const bool pad = !v.empty() && (v.front() & 0x80) != 0;
    out.push_back(0x02);
    out.push_back(static_cast<std::uint8_t>(v.size() + (pad ? 1 : 0)));
    if (pad) out.push_back(0x00);
    out.insert(out.end(), v.begin(), v.end());
}

// CKM_ECDSA returns r || s; X.509 wants ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }.
Bytes ecdsa_signature_der(std::span<const std::uint8_t> raw) {
    if (raw.empty() || raw.size() % 2 != 0 || raw.size() > 132)
        throw HsmUnavailable("the HSM returned an ECDSA signature of " + std::to_string(raw.size()) + " bytes");
    Bytes body;
    append_der_integer(body, raw.first(raw.size() / 2));
    append_der_integer(body, raw.subspan(raw.size() / 2));
    Bytes out{0x30};
    if (body.size() >= 0x80) out.push_back(0x81);
    out.push_back(static_cast<std::uint8_t>(body.size()));
    out.insert(out.end(), body.begin(), body.end());
    return out;
}

// The private key object the URI names, found with direct Cryptoki calls.
CK_OBJECT_HANDLE find_private_key(const Session& session, const Uri& uri) {
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_BBOOL on_token = CK_TRUE;  // not pkcs11-provider's session-object copies
    std::vector<CK_ATTRIBUTE> tmpl = {{CKA_CLASS, &cls, sizeof cls}, {CKA_TOKEN, &on_token, sizeof on_token}};
    if (!uri.object.empty())
        tmpl.push_back({CKA_LABEL, const_cast<char*>(uri.object.data()), uri.object.size()});
    if (uri.id) tmpl.push_back({CKA_ID, const_cast<char*>(uri.id->data()), uri.id->size()});
    auto found = session.find(tmpl, 2);
    if (found.size() != 1)
        throw std::runtime_error(found.empty() ? "no private key at " + uri.to_string()
                                               : "several private keys match " + uri.to_string() +
                                                     "; labels and ids must be unique");
    return found.front();
}

}  // namespace

// One connection to the token. pkcs11-provider (in its private library context) loads the
// key by URI and reads its public half; the signatures themselves go straight to Cryptoki
// over a pool of this generation's own sessions: C_SignInit + C_Sign on a digest made
// here, which is all the HSM is needed for (no provider session bookkeeping per call).
// Replaced wholesale when the token fails; threads still using the old one finish with it.
class Generation {
public:
    Generation(const SignerConfig& config)
        : context_(config.hsm), uri_(config.key.to_string()), key_(context_.load_private_key(config.key)),
          module_(config.hsm.module) {
        if (!key_) throw std::runtime_error("no private key at " + uri_);
        profile_ = profile_for(key_.get(), uri_);
        md_.reset(EVP_MD_fetch(context_.libctx(), profile_.digest, "provider=default"));
        if (!md_) throw ossl::Error(std::string("fetching ") + profile_.digest);
        spki_ = ossl::public_key_der(*key_);
        slot_ = module_.slot_for_token(config.hsm.token_label);
        auto first = std::make_unique<Session>(module_, slot_);
        std::string pin = read_pin(config.hsm.pin);
        try {
            first->login(pin, config.hsm.token_label);  // the login covers every session of the process
        } catch (...) {
            ::explicit_bzero(pin.data(), pin.size());
            throw;
        }
        ::explicit_bzero(pin.data(), pin.size());
        token_key_ = find_private_key(*first, config.key);
        const CK_OBJECT_HANDLE key = session_copy(*first);
        idle_.push_back({std::move(first), key});
    }

    ~Generation() {
        if (abandoned_.load())
            for (auto& p : idle_) p.session->abandon();
    }

    const Profile& profile() const { return profile_; }
    const Bytes& spki() const { return spki_; }

    // The module failed: the sessions are not closed (their handles may be stale, or reused
    // once the module is re-initialised).
    void abandon() { abandoned_ = true; }

    // Throws HsmUnavailable on any failure.
    Bytes sign(std::span<const std::uint8_t> tbs) {
        std::uint8_t input[sizeof kSha256DigestInfo + EVP_MAX_MD_SIZE];
        std::size_t prefix = 0;
        if (profile_.rsa) {
            std::memcpy(input, kSha256DigestInfo, sizeof kSha256DigestInfo);
            prefix = sizeof kSha256DigestInfo;
        }
        unsigned int digest_len = 0;
        if (EVP_Digest(tbs.data(), tbs.size(), input + prefix, &digest_len, md_.get(), nullptr) != 1)
            throw HsmUnavailable(ossl::Error("hashing the to-be-signed data").what());

        Pooled pooled = take_session();
        Session& session = *pooled.session;
        CK_FUNCTION_LIST* api = session.api();
        CK_MECHANISM mechanism{profile_.rsa ? CKM_RSA_PKCS : CKM_ECDSA, nullptr, 0};
        std::uint8_t sig[1024];
        CK_ULONG sig_len = sizeof sig;
        CK_RV rv = api->C_SignInit(session.handle(), &mechanism, pooled.key);
        if (rv == CKR_OK)
            rv = api->C_Sign(session.handle(), input, static_cast<CK_ULONG>(prefix + digest_len), sig, &sig_len);
        if (rv != CKR_OK) {
            session.abandon();
            throw HsmUnavailable("signing with " + uri_ + " failed: " + rv_name(rv));
        }
        give_back(std::move(pooled));
        if (profile_.rsa) return Bytes(sig, sig + sig_len);
        return ecdsa_signature_der({sig, static_cast<std::size_t>(sig_len)});
    }

private:
    // A session of the pool and the key handle it signs with.
    struct Pooled {
        std::unique_ptr<Session> session;
        CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
    };

    // The key this session signs with: its own session-object copy when the token allows it
    // (as pkcs11-provider does), else the token object. SoftHSM re-reads a token object's
    // file on every use and serialises attribute reads per object, so one copy per session
    // keeps concurrent signatures apart. A copy is as unextractable as the original and goes
    // when its session closes.
    CK_OBJECT_HANDLE session_copy(const Session& session) const {
        CK_BBOOL session_only = CK_FALSE;
        CK_ATTRIBUTE copy_tmpl[] = {{CKA_TOKEN, &session_only, sizeof session_only}};
        CK_OBJECT_HANDLE copy = CK_INVALID_HANDLE;
        if (session.api()->C_CopyObject(session.handle(), token_key_, copy_tmpl, 1, &copy) == CKR_OK &&
            copy != CK_INVALID_HANDLE)
            return copy;
        return token_key_;
    }

    Pooled take_session() {
        {
            std::lock_guard lock(mu_);
            if (!idle_.empty()) {
                Pooled p = std::move(idle_.back());
                idle_.pop_back();
                return p;
            }
        }
        try {
            auto session = std::make_unique<Session>(module_, slot_);
            const CK_OBJECT_HANDLE key = session_copy(*session);
            return {std::move(session), key};
        } catch (const std::exception& e) {
            throw HsmUnavailable(std::string("opening a session on the token: ") + e.what());
        }
    }
    void give_back(Pooled p) {
        std::lock_guard lock(mu_);
        idle_.push_back(std::move(p));
    }

    ProviderContext context_;
    std::string uri_;
    ossl::PKey key_;
    Module module_;  // the same module instance pkcs11-provider uses: one login covers both
    CK_SLOT_ID slot_ = 0;
    CK_OBJECT_HANDLE token_key_ = CK_INVALID_HANDLE;
    Profile profile_;
    ossl::Md md_;
    Bytes spki_;
    std::atomic<bool> abandoned_{false};
    std::mutex mu_;
    std::vector<Pooled> idle_;
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
        gen->abandon();
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
