#pragma once
// Where a token PIN comes from. PINs never travel on a command line and are never logged.

#include <string>
#include <string_view>

namespace pkcs11 {

struct PinSource {
    enum class Kind { File, Environment };
    Kind kind = Kind::File;
    std::string reference;  // file path, or environment variable name

    // "file:/path/to/pin" or "env:VARIABLE"; a bare path means a file.
    static PinSource parse(std::string_view spec);
    std::string describe() const;  // "PIN file /x" / "environment variable X"; never the PIN
};

// Reads the PIN. A file must be a regular file not readable or writable by group or
// others (0600 or stricter). One trailing newline is removed. Throws std::runtime_error
// naming the source and what to fix.
std::string read_pin(const PinSource& source);

}  // namespace pkcs11
