#pragma once
// Turning OpenSSL's thread-local error queue into messages a person can act on.

#include <stdexcept>
#include <string>
#include <string_view>

namespace ossl {

// Drains this thread's OpenSSL error queue into one line ("" when it is empty).
std::string drain_errors();

// Thrown where an OpenSSL call fails; the message names the operation and carries the
// drained error queue.
class Error : public std::runtime_error {
public:
    explicit Error(std::string_view what_failed);
};

}  // namespace ossl
