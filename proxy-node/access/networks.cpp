#include "access/networks.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <initializer_list>
#include <cstring>

namespace proxy::access {

namespace {

constexpr unsigned kV4Bits = 32;
constexpr unsigned kV6Bits = 128;
// ::ffff:0:0/96 (RFC 4291 2.5.5.2)
constexpr std::array<std::uint8_t, 12> kMappedPrefix = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool prefix_equal(const std::array<std::uint8_t, 16>& a, const std::array<std::uint8_t, 16>& b, unsigned bits) {
    const unsigned whole = bits / 8;
    if (std::memcmp(a.data(), b.data(), whole) != 0) return false;
    const unsigned rest = bits % 8;
    if (rest == 0) return true;
    const auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

bool host_bits_zero(const std::array<std::uint8_t, 16>& a, unsigned bits, unsigned total) {
    for (unsigned i = bits; i < total; ++i)
        if ((a[i / 8] >> (7 - i % 8)) & 1U) return false;
    return true;
}

std::string to_text(const Address& a) {
    char buf[INET6_ADDRSTRLEN] = {};
    ::inet_ntop(a.v6 ? AF_INET6 : AF_INET, a.bytes.data(), buf, sizeof buf);
    return buf;
}

// An IPv4-mapped IPv6 address is the IPv4 address it carries.
Address unmapped(const Address& a) {
    if (!a.v6 || std::memcmp(a.bytes.data(), kMappedPrefix.data(), kMappedPrefix.size()) != 0) return a;
    Address v4;
    std::memcpy(v4.bytes.data(), a.bytes.data() + kMappedPrefix.size(), 4);
    return v4;
}

}  // namespace

std::optional<Address> parse_address(std::string_view text) {
    const std::string s(text);
    Address a;
    if (::inet_pton(AF_INET, s.c_str(), a.bytes.data()) == 1) return a;
    if (::inet_pton(AF_INET6, s.c_str(), a.bytes.data()) == 1) {
        a.v6 = true;
        return a;
    }
    return std::nullopt;
}

Address to_address(const asio::ip::address& a) {
    Address out;
    if (a.is_v4()) {
        const auto b = a.to_v4().to_bytes();
        std::copy(b.begin(), b.end(), out.bytes.begin());
    } else {
        out.v6 = true;
        const auto b = a.to_v6().to_bytes();
        std::copy(b.begin(), b.end(), out.bytes.begin());
    }
    return out;
}

std::optional<Network> parse_network(std::string_view text, std::string& error) {
    const auto slash = text.find('/');
    const auto addr_text = text.substr(0, slash);
    auto addr = parse_address(addr_text);
    if (!addr) {
        error = "'" + std::string(text) + "' is not ADDRESS/PREFIX (e.g. 10.0.0.0/8, fc00::/7)";
        return std::nullopt;
    }
    const unsigned total = addr->v6 ? kV6Bits : kV4Bits;
    unsigned prefix = total;
    if (slash != std::string_view::npos) {
        const auto p = text.substr(slash + 1);
        auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
        if (p.empty() || ec != std::errc() || end != p.data() + p.size() || prefix > total) {
            error = "'" + std::string(text) + "': the prefix length must be 0-" + std::to_string(total);
            return std::nullopt;
        }
    }
    if (!host_bits_zero(addr->bytes, prefix, total)) {
        // A typo here would silently widen or narrow who gets in: say what was probably meant.
        Address net = *addr;
        for (unsigned i = prefix; i < total; ++i) net.bytes[i / 8] &= static_cast<std::uint8_t>(~(1U << (7 - i % 8)));
        error = "'" + std::string(text) + "' has host bits set (did you mean " + to_text(net) + "/" +
                std::to_string(prefix) + "?)";
        return std::nullopt;
    }
    if (addr->v6 && prefix >= 96 && std::memcmp(addr->bytes.data(), kMappedPrefix.data(), kMappedPrefix.size()) == 0) {
        // ::ffff:a.b.c.d/N is the IPv4 network a.b.c.d/(N-96): clients are matched unmapped.
        addr = unmapped(*addr);
        prefix -= 96;
    }
    Network n;
    n.v6 = addr->v6;
    n.address = addr->bytes;
    n.prefix = prefix;
    n.text = to_text(*addr) + "/" + std::to_string(prefix);
    return n;
}

namespace {

std::vector<Network> networks(std::initializer_list<const char*> texts) {
    std::vector<Network> out;
    for (const char* text : texts) {
        std::string error;
        out.push_back(*parse_network(text, error));
    }
    return out;
}

}  // namespace

std::vector<Network> default_allowed_clients() {
    return networks({"127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"});
}

std::vector<Network> default_denied_destinations() {
    return networks({"127.0.0.0/8", "::1/128", "0.0.0.0/8", "::/128", "169.254.0.0/16", "fe80::/10", "224.0.0.0/4",
                     "ff00::/8", "255.255.255.255/32"});
}

const Network* Networks::match(const Address& address) const {
    const Address a = unmapped(address);
    for (const auto& n : networks_)
        if (n.v6 == a.v6 && prefix_equal(n.address, a.bytes, n.prefix)) return &n;
    return nullptr;
}

}  // namespace proxy::access
