#include "pkcs11/pin.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace pkcs11 {

namespace {
constexpr std::size_t kMaxPinLength = 256;

std::string errno_text() { return std::strerror(errno); }

void check_pin_text(const std::string& pin, const PinSource& source) {
    if (pin.empty()) throw std::runtime_error(source.describe() + " is empty; write the token PIN into it");
    if (pin.size() > kMaxPinLength)
        throw std::runtime_error(source.describe() + " is longer than " + std::to_string(kMaxPinLength) +
                                 " bytes; it does not look like a PIN");
    for (char c : pin) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
            throw std::runtime_error(source.describe() +
                                     " contains control characters; it must hold the PIN and at most one "
                                     "trailing newline");
    }
}
}  // namespace

PinSource PinSource::parse(std::string_view spec) {
    if (spec.starts_with("env:")) {
        std::string name(spec.substr(4));
        if (name.empty()) throw std::runtime_error("PIN source 'env:' names no environment variable");
        return {Kind::Environment, name};
    }
    if (spec.starts_with("file:")) spec.remove_prefix(5);
    if (spec.empty()) throw std::runtime_error("PIN source is empty; use file:/path or env:VARIABLE");
    return {Kind::File, std::string(spec)};
}

std::string PinSource::describe() const {
    return kind == Kind::File ? "PIN file " + reference : "environment variable " + reference;
}

std::string read_pin(const PinSource& source) {
    std::string pin;
    if (source.kind == PinSource::Kind::Environment) {
        const char* v = std::getenv(source.reference.c_str());
        if (v == nullptr) throw std::runtime_error(source.describe() + " is not set; export it with the token PIN");
        pin = v;
    } else {
        int fd = ::open(source.reference.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
            throw std::runtime_error("cannot open " + source.describe() + ": " + errno_text());
        struct stat st {};
        if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            ::close(fd);
            throw std::runtime_error(source.describe() + " is not a regular file");
        }
        if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
            ::close(fd);
            char mode[8];
            std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
            throw std::runtime_error(source.describe() + " is accessible by group or others (mode " + mode +
                                     "); run: chmod 600 " + source.reference);
        }
        char buf[kMaxPinLength + 2];
        ssize_t n = ::read(fd, buf, sizeof buf);
        ::close(fd);
        if (n < 0) throw std::runtime_error("cannot read " + source.describe() + ": " + errno_text());
        pin.assign(buf, static_cast<std::size_t>(n));
        ::explicit_bzero(buf, sizeof buf);
        if (pin.ends_with('\n')) pin.pop_back();
        if (pin.ends_with('\r')) pin.pop_back();
    }
    check_pin_text(pin, source);
    return pin;
}

}  // namespace pkcs11
