#include "pkcs11/module.hpp"

#include <dlfcn.h>

#include <cstring>

namespace pkcs11 {

namespace {

std::string padded_field(const unsigned char* data, std::size_t size) {
    std::string s(reinterpret_cast<const char*>(data), size);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
    return s;
}

CK_UTF8CHAR_PTR utf8(std::string_view s) {
    return reinterpret_cast<CK_UTF8CHAR_PTR>(const_cast<char*>(s.data()));
}

}  // namespace

void check(CK_RV rv, std::string_view what) {
    if (rv != CKR_OK) throw Error(std::string(what) + ": " + rv_name(rv), rv);
}

Module::Module(const std::filesystem::path& path) : path_(path) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec))
        throw Error("PKCS#11 module " + path.string() + " does not exist; install it or fix the module path",
                    CKR_GENERAL_ERROR);
    handle_ = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle_ == nullptr)
        throw Error("cannot load PKCS#11 module " + path.string() + ": " + ::dlerror(), CKR_GENERAL_ERROR);
    auto get_list = reinterpret_cast<CK_C_GetFunctionList>(::dlsym(handle_, "C_GetFunctionList"));
    if (get_list == nullptr || get_list(&api_) != CKR_OK || api_ == nullptr) {
        ::dlclose(handle_);
        throw Error(path.string() + " is not a PKCS#11 module (no usable C_GetFunctionList)", CKR_GENERAL_ERROR);
    }
    CK_C_INITIALIZE_ARGS args{};
    args.flags = CKF_OS_LOCKING_OK;
    CK_RV rv = api_->C_Initialize(&args);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        ::dlclose(handle_);
        throw Error("PKCS#11 module " + path.string() + " failed to initialise: " + rv_name(rv) +
                        (rv == CKR_GENERAL_ERROR ? " (for SoftHSM, check SOFTHSM2_CONF and its tokendir)" : ""),
                    rv);
    }
}

// Never C_Finalize: the module may be shared with pkcs11-provider in this process, and
// SoftHSM crashes when finalised underneath another user. Process exit reclaims it.
Module::~Module() {
    if (handle_ != nullptr) ::dlclose(handle_);
}

void Module::reinitialize() const {
    api_->C_Finalize(nullptr);
    CK_C_INITIALIZE_ARGS args{};
    args.flags = CKF_OS_LOCKING_OK;
    CK_RV rv = api_->C_Initialize(&args);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED)
        throw Error("re-initialising PKCS#11 module " + path_.string() + ": " + rv_name(rv), rv);
}

std::vector<TokenInfo> Module::tokens() const {
    CK_ULONG count = 0;
    check(api_->C_GetSlotList(CK_TRUE, nullptr, &count), "C_GetSlotList");
    std::vector<CK_SLOT_ID> slots(count);
    check(api_->C_GetSlotList(CK_TRUE, slots.data(), &count), "C_GetSlotList");
    slots.resize(count);
    std::vector<TokenInfo> out;
    for (CK_SLOT_ID slot : slots) {
        CK_TOKEN_INFO info{};
        if (api_->C_GetTokenInfo(slot, &info) != CKR_OK) continue;
        out.push_back({slot, padded_field(info.label, sizeof info.label),
                       padded_field(info.serialNumber, sizeof info.serialNumber),
                       (info.flags & CKF_TOKEN_INITIALIZED) != 0});
    }
    return out;
}

CK_SLOT_ID Module::slot_for_token(std::string_view label) const {
    std::string present;
    for (const auto& t : tokens()) {
        if (!t.initialized) continue;
        if (t.label == label) return t.slot;
        present += (present.empty() ? "" : ", ") + ("'" + t.label + "'");
    }
    throw Error("no token labelled '" + std::string(label) + "' in PKCS#11 module " + path_.string() +
                    " (tokens present: " + (present.empty() ? "none" : present) + ")",
                CKR_TOKEN_NOT_PRESENT);
}

std::optional<CK_SLOT_ID> Module::uninitialized_slot() const {
    for (const auto& t : tokens())
        if (!t.initialized) return t.slot;
    return std::nullopt;
}

void Module::init_token(CK_SLOT_ID slot, std::string_view label, std::string_view so_pin,
                        std::string_view user_pin) const {
    unsigned char padded[32];
    std::memset(padded, ' ', sizeof padded);
    std::memcpy(padded, label.data(), std::min(label.size(), sizeof padded));
    check(api_->C_InitToken(slot, utf8(so_pin), so_pin.size(), padded),
          "C_InitToken for token '" + std::string(label) + "'");
    // SoftHSM renumbers the slot once its token is initialised: find it again by label.
    CK_SLOT_ID fresh = slot_for_token(label);
    Session s(*this, fresh, true);
    s.login(so_pin, label, CKU_SO);
    check(api_->C_InitPIN(s.handle(), utf8(user_pin), user_pin.size()),
          "C_InitPIN for token '" + std::string(label) + "'");
    api_->C_Logout(s.handle());
}

Session::Session(const Module& module, CK_SLOT_ID slot, bool read_write) : api_(module.api()) {
    CK_FLAGS flags = CKF_SERIAL_SESSION | (read_write ? CKF_RW_SESSION : 0);
    check(api_->C_OpenSession(slot, flags, nullptr, nullptr, &handle_), "C_OpenSession");
}

Session::~Session() {
    if (handle_ != CK_INVALID_HANDLE) api_->C_CloseSession(handle_);
}

void Session::login(std::string_view pin, std::string_view token_label, CK_USER_TYPE user) {
    CK_RV rv = api_->C_Login(handle_, user, utf8(pin), pin.size());
    if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN) return;
    std::string who = user == CKU_SO ? "security officer PIN" : "PIN";
    if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LEN_RANGE)
        throw Error("token '" + std::string(token_label) + "' rejected the " + who + " (" + rv_name(rv) +
                        "); check the PIN file configured for it",
                    rv);
    if (rv == CKR_PIN_LOCKED)
        throw Error("token '" + std::string(token_label) + "' has locked its " + who +
                        " after too many wrong attempts (CKR_PIN_LOCKED); the security officer must reset it",
                    rv);
    check(rv, "C_Login to token '" + std::string(token_label) + "'");
}

std::vector<CK_OBJECT_HANDLE> Session::find(std::span<CK_ATTRIBUTE> tmpl, std::size_t max) const {
    check(api_->C_FindObjectsInit(handle_, tmpl.data(), tmpl.size()), "C_FindObjectsInit");
    std::vector<CK_OBJECT_HANDLE> out(max);
    CK_ULONG n = 0;
    CK_RV rv = api_->C_FindObjects(handle_, out.data(), max, &n);
    api_->C_FindObjectsFinal(handle_);
    check(rv, "C_FindObjects");
    out.resize(n);
    return out;
}

CK_OBJECT_HANDLE Session::find_one(CK_OBJECT_CLASS cls, std::string_view label) const {
    // Token objects only: pkcs11-provider caches keys as session-object copies with the
    // same label, visible to every session of this process.
    CK_BBOOL on_token = CK_TRUE;
    CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof cls},
                           {CKA_TOKEN, &on_token, sizeof on_token},
                           {CKA_LABEL, const_cast<char*>(label.data()), label.size()}};
    auto found = find(tmpl, 2);
    if (found.empty())
        throw Error("no object labelled '" + std::string(label) + "' of the requested class on the token",
                    CKR_KEY_HANDLE_INVALID);
    if (found.size() > 1)
        throw Error("several objects labelled '" + std::string(label) + "'; labels must be unique",
                    CKR_GENERAL_ERROR);
    return found.front();
}

CK_RV Session::get_attribute(CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type, Bytes& out) const {
    CK_ATTRIBUTE a{type, nullptr, 0};
    CK_RV rv = api_->C_GetAttributeValue(handle_, obj, &a, 1);
    if (rv != CKR_OK) return rv;
    if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION) return CKR_ATTRIBUTE_SENSITIVE;
    out.resize(a.ulValueLen);
    a.pValue = out.data();
    return api_->C_GetAttributeValue(handle_, obj, &a, 1);
}

bool Session::get_bool(CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type) const {
    CK_BBOOL v = CK_FALSE;
    CK_ATTRIBUTE a{type, &v, sizeof v};
    check(api_->C_GetAttributeValue(handle_, obj, &a, 1), "C_GetAttributeValue");
    return v == CK_TRUE;
}

Bytes Session::sign(CK_OBJECT_HANDLE key, CK_MECHANISM_TYPE mechanism, std::span<const std::uint8_t> data) const {
    CK_MECHANISM mech{mechanism, nullptr, 0};
    check(api_->C_SignInit(handle_, &mech, key), "C_SignInit");
    Bytes sig(512);
    CK_ULONG len = sig.size();
    check(api_->C_Sign(handle_, const_cast<CK_BYTE_PTR>(data.data()), data.size(), sig.data(), &len), "C_Sign");
    sig.resize(len);
    return sig;
}

}  // namespace pkcs11
