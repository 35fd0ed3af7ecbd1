#pragma once
// A pkcs11::Signer over an EC P-256 key generated in memory, for unit tests that need real
// signatures but no HSM (the HSM signer itself is exercised by the integration tests).

#include "ossl/handles.hpp"
#include "pkcs11/signer.hpp"

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <string>

namespace testing_support {

class SoftwareSigner final : public pkcs11::Signer {
public:
    SoftwareSigner();  // a fresh key every time

    std::span<const std::uint8_t> algorithm_identifier() const override;
    std::span<const std::uint8_t> public_key_info() const override;
    // Thread-safe. Throws pkcs11::HsmUnavailable while set_available(false), like a token
    // that was pulled.
    pkcs11::Bytes sign(std::span<const std::uint8_t> tbs) override;

    void set_available(bool available) { available_ = available; }
    std::uint64_t signatures() const { return signatures_; }

    // A self-signed certificate for the key (what `ca-audit verify --cert` reads).
    const X509& certificate() const { return *certificate_; }
    std::string certificate_pem() const;
    void write_certificate_pem(const std::filesystem::path& file) const;

private:
    ossl::PKey key_;
    pkcs11::Bytes spki_;
    ossl::X509Ptr certificate_;
    std::atomic<bool> available_{true};
    std::atomic<std::uint64_t> signatures_{0};
};

}  // namespace testing_support
