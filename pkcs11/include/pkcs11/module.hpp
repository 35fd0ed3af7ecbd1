#pragma once
// Direct Cryptoki access: token administration (hsm-tool), attribute checks (tests), the
// raw signature rate (benchmarks) and HsmSigner's signing sessions. Services sign through
// pkcs11::HsmSigner.

#include "pkcs11/cryptoki.hpp"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace pkcs11 {

using Bytes = std::vector<std::uint8_t>;

struct TokenInfo {
    CK_SLOT_ID slot;
    std::string label;  // trailing padding removed
    std::string serial;
    bool initialized;
};

class Module {
public:
    // Loads the module and initialises it for multi-threaded use. A module already
    // initialised in this process (by pkcs11-provider, say) is shared, not re-initialised.
    explicit Module(const std::filesystem::path& path);
    ~Module();
    Module(const Module&) = delete;
    Module& operator=(const Module&) = delete;

    CK_FUNCTION_LIST* api() const noexcept { return api_; }
    const std::filesystem::path& path() const noexcept { return path_; }

    std::vector<TokenInfo> tokens() const;
    // Throws Error listing the labels present when no initialised token has this label.
    CK_SLOT_ID slot_for_token(std::string_view label) const;
    std::optional<CK_SLOT_ID> uninitialized_slot() const;

    // C_Finalize then C_Initialize: drops every session of every user in this process.
    // Remote modules (network HSMs, p11-kit-client) reconnect only this way.
    void reinitialize() const;

    // Initialises the token in `slot` (erasing it), then sets the user PIN.
    void init_token(CK_SLOT_ID slot, std::string_view label, std::string_view so_pin,
                    std::string_view user_pin) const;

private:
    std::filesystem::path path_;
    void* handle_ = nullptr;
    CK_FUNCTION_LIST* api_ = nullptr;
};

class Session {
public:
    Session(const Module& module, CK_SLOT_ID slot, bool read_write = false);
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    CK_SESSION_HANDLE handle() const noexcept { return handle_; }
    CK_FUNCTION_LIST* api() const noexcept { return api_; }
    // Forgets the handle without C_CloseSession: after a module failure the handle may be
    // stale, and once the module is re-initialised its number may belong to a new session.
    void abandon() noexcept { handle_ = CK_INVALID_HANDLE; }

    // Logs the user in; "already logged in" counts as success. A wrong PIN throws an
    // Error that says so and names the token.
    void login(std::string_view pin, std::string_view token_label, CK_USER_TYPE user = CKU_USER);

    std::vector<CK_OBJECT_HANDLE> find(std::span<CK_ATTRIBUTE> tmpl, std::size_t max = 64) const;
    // The single object of `cls` labelled `label`; throws when none or several match.
    CK_OBJECT_HANDLE find_one(CK_OBJECT_CLASS cls, std::string_view label) const;

    // The attribute's value, or the Cryptoki error (CKR_ATTRIBUTE_SENSITIVE, ...).
    CK_RV get_attribute(CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type, Bytes& out) const;
    bool get_bool(CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type) const;

    Bytes sign(CK_OBJECT_HANDLE key, CK_MECHANISM_TYPE mechanism, std::span<const std::uint8_t> data) const;

private:
    CK_FUNCTION_LIST* api_;
    CK_SESSION_HANDLE handle_ = CK_INVALID_HANDLE;
};

// Throws Error("<what>: <rv name>") unless rv is CKR_OK.
void check(CK_RV rv, std::string_view what);

}  // namespace pkcs11
