#pragma once
// The PKCS#11 (Cryptoki) C interface, as shipped by p11-kit, plus error reporting.

#include <p11-kit/pkcs11.h>

#include <stdexcept>
#include <string>

namespace pkcs11 {

// Symbolic name of a return value ("CKR_PIN_INCORRECT"), or its hex value.
std::string rv_name(CK_RV rv);

// A failed Cryptoki call: says which call, on what, and the return value.
class Error : public std::runtime_error {
public:
    Error(std::string message, CK_RV rv) : std::runtime_error(std::move(message)), rv_(rv) {}
    CK_RV rv() const noexcept { return rv_; }

private:
    CK_RV rv_;
};

}  // namespace pkcs11
