#pragma once
// RFC 7512 "pkcs11:" URIs: the only way this project names tokens, keys and certificates
// (slot numbers change when SoftHSM initialises a token, labels do not).

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pkcs11 {

struct Uri {
    std::string token;                  // token label
    std::string object;                 // object label (CKA_LABEL)
    std::optional<std::string> id;      // object id (CKA_ID), raw bytes
    std::optional<std::string> type;    // "private", "public", "cert", ...
    std::optional<std::string> serial;  // token serial number

    // Parses and percent-decodes. Refuses PINs inside the URI (pin-value, pin-source):
    // the PIN belongs in a PIN file. Throws std::invalid_argument saying what is wrong.
    static Uri parse(std::string_view text);
    // Canonical text form with percent-encoding.
    std::string to_string() const;
};

}  // namespace pkcs11
