#include "certs/names.hpp"

#include <arpa/inet.h>

#include <cctype>
#include <string>

namespace proxy {

std::string normalise_name(std::string_view name) {
    std::string out(name);
    if (is_ip_literal(out)) return out;
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!out.empty() && out.back() == '.') out.pop_back();
    return out;
}

bool is_ip_literal(std::string_view name) {
    std::string s(name);
    unsigned char buf[16];
    return ::inet_pton(AF_INET, s.c_str(), buf) == 1 || ::inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

bool plausible_dns_name(std::string_view name) {
    if (name.empty() || name.size() > 253) return false;
    std::size_t labels = 0;
    std::size_t start = 0;
    if (name.rfind("*.", 0) == 0) start = 2;
    while (start <= name.size()) {
        auto end = name.find('.', start);
        if (end == std::string_view::npos) end = name.size();
        auto label = name.substr(start, end - start);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
        for (char c : label)
            if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-')) return false;
        ++labels;
        start = end + 1;
        if (end == name.size()) break;
    }
    // Single-label names are never issued; a wildcard needs at least two labels under it.
    return labels >= 2 && !is_ip_literal(name);
}

}  // namespace proxy
