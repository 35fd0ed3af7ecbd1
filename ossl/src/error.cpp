#include "ossl/error.hpp"

#include <openssl/err.h>

namespace ossl {

std::string drain_errors() {
    std::string out;
    unsigned long code = 0;
    const char* data = nullptr;
    int flags = 0;
    while ((code = ERR_get_error_all(nullptr, nullptr, nullptr, &data, &flags)) != 0) {
        char buf[256];
        ERR_error_string_n(code, buf, sizeof buf);
        if (!out.empty()) out += "; ";
        out += buf;
        if ((flags & ERR_TXT_STRING) != 0 && data != nullptr && *data != '\0') {
            out += " (";
            out += data;
            out += ")";
        }
    }
    return out;
}

namespace {
std::string with_queue(std::string_view what_failed) {
    std::string msg(what_failed);
    if (auto queue = drain_errors(); !queue.empty()) msg += ": " + queue;
    return msg;
}
}  // namespace

Error::Error(std::string_view what_failed) : std::runtime_error(with_queue(what_failed)) {}

}  // namespace ossl
