#include "pkcs11/uri.hpp"

#include <stdexcept>

namespace pkcs11 {

namespace {

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::string pct_decode(std::string_view v, std::string_view attr) {
    std::string out;
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (v[i] != '%') {
            out.push_back(v[i]);
            continue;
        }
        if (i + 2 >= v.size() || hex_digit(v[i + 1]) < 0 || hex_digit(v[i + 2]) < 0)
            throw std::invalid_argument("pkcs11 URI attribute '" + std::string(attr) +
                                        "' has a malformed percent-escape");
        out.push_back(static_cast<char>(hex_digit(v[i + 1]) << 4 | hex_digit(v[i + 2])));
        i += 2;
    }
    return out;
}

bool unreserved(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

std::string pct_encode(std::string_view v, bool all) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : v) {
        if (!all && unreserved(c)) {
            out.push_back(static_cast<char>(c));
        } else {
            out.push_back('%');
            out.push_back(kHex[c >> 4]);
            out.push_back(kHex[c & 15]);
        }
    }
    return out;
}

}  // namespace

Uri Uri::parse(std::string_view text) {
    constexpr std::string_view kScheme = "pkcs11:";
    if (!text.starts_with(kScheme))
        throw std::invalid_argument("'" + std::string(text.substr(0, 40)) +
                                    "' is not a pkcs11: URI (RFC 7512), e.g. pkcs11:token=ca;object=issuing;type=private");
    text.remove_prefix(kScheme.size());
    std::string_view path = text;
    std::string_view query;
    if (auto q = text.find('?'); q != std::string_view::npos) {
        path = text.substr(0, q);
        query = text.substr(q + 1);
    }
    Uri uri;
    while (!path.empty()) {
        auto semi = path.find(';');
        std::string_view item = path.substr(0, semi);
        path = semi == std::string_view::npos ? std::string_view{} : path.substr(semi + 1);
        if (item.empty()) continue;
        auto eq = item.find('=');
        if (eq == std::string_view::npos)
            throw std::invalid_argument("pkcs11 URI path attribute '" + std::string(item) + "' has no '='");
        std::string_view name = item.substr(0, eq);
        std::string value = pct_decode(item.substr(eq + 1), name);
        if (name == "token") uri.token = value;
        else if (name == "object") uri.object = value;
        else if (name == "id") uri.id = value;
        else if (name == "type") {
            if (value != "private" && value != "public" && value != "cert" && value != "secret-key" && value != "data")
                throw std::invalid_argument("pkcs11 URI type '" + value + "' is not one of private, public, cert");
            uri.type = value;
        } else if (name == "serial") uri.serial = value;
        else if (name == "manufacturer" || name == "model" || name.starts_with("library-") || name.starts_with("slot-"))
            continue;  // allowed by RFC 7512; not used to select anything here
        else
            throw std::invalid_argument("pkcs11 URI has unknown path attribute '" + std::string(name) + "'");
    }
    while (!query.empty()) {
        auto amp = query.find('&');
        std::string_view item = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        std::string_view name = item.substr(0, item.find('='));
        if (name == "pin-value" || name == "pin-source")
            throw std::invalid_argument("pkcs11 URI carries a PIN (" + std::string(name) +
                                        "); remove it and configure a PIN file instead");
        if (name == "module-path" || name == "module-name")
            throw std::invalid_argument("pkcs11 URI names a module (" + std::string(name) +
                                        "); configure the module path separately");
    }
    if (uri.token.empty() && !uri.serial) throw std::invalid_argument("pkcs11 URI names no token (token=LABEL)");
    return uri;
}

std::string Uri::to_string() const {
    std::string out = "pkcs11:token=" + pct_encode(token, false);
    if (serial) out += ";serial=" + pct_encode(*serial, false);
    if (!object.empty()) out += ";object=" + pct_encode(object, false);
    if (id) out += ";id=" + pct_encode(*id, true);
    if (type) out += ";type=" + *type;
    return out;
}

}  // namespace pkcs11
