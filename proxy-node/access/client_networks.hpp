#pragma once
// Which client addresses may use the proxy listener: a list of networks in CIDR notation
// ("10.0.0.0/8", "fc00::/7"). An IPv4 client seen on an IPv6 socket (::ffff:a.b.c.d) is
// matched as the IPv4 address it is.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace proxy::access {

struct Network {
    bool v6 = false;
    std::array<std::uint8_t, 16> address{};  // network address, host bits zero (IPv4 in the first 4 bytes)
    unsigned prefix = 0;
    std::string text;  // as configured, normalised ("10.0.0.0/8")
};

// An IPv4 or IPv6 address as bytes; nullopt if `text` is not an address literal.
struct Address {
    bool v6 = false;
    std::array<std::uint8_t, 16> bytes{};
};
std::optional<Address> parse_address(std::string_view text);

// "ADDRESS/PREFIX" or a bare address (a single host). Returns the network, or sets `error`
// to what is wrong (host bits set, prefix out of range, not an address) and returns nullopt.
std::optional<Network> parse_network(std::string_view text, std::string& error);

// Loopback and private ranges: 127.0.0.0/8, ::1/128, 10.0.0.0/8, 172.16.0.0/12,
// 192.168.0.0/16, fc00::/7.
std::vector<Network> default_allowed_clients();

class ClientNetworks {
public:
    explicit ClientNetworks(std::vector<Network> allowed) : allowed_(std::move(allowed)) {}
    // The first network that contains `client`, or nullptr.
    const Network* match(const Address& client) const;
    bool allows(const Address& client) const { return match(client) != nullptr; }

private:
    std::vector<Network> allowed_;
};

}  // namespace proxy::access
