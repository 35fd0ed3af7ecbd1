#pragma once
// Lists of networks in CIDR notation ("10.0.0.0/8", "fc00::/7"): which client addresses may
// use the proxy listener, and which destination addresses the proxy never connects to. An
// IPv4 address seen as IPv6 (::ffff:a.b.c.d) is matched as the IPv4 address it is.

#include <asio/ip/address.hpp>

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
// The same for an address Asio gives (a peer, a resolved name).
Address to_address(const asio::ip::address& a);

// "ADDRESS/PREFIX" or a bare address (a single host). Returns the network, or sets `error`
// to what is wrong (host bits set, prefix out of range, not an address) and returns nullopt.
std::optional<Network> parse_network(std::string_view text, std::string& error);

// Loopback and private ranges: 127.0.0.0/8, ::1/128, 10.0.0.0/8, 172.16.0.0/12,
// 192.168.0.0/16, fc00::/7.
std::vector<Network> default_allowed_clients();

// Addresses that reach the proxy's own host or no single server: loopback (127.0.0.0/8,
// ::1), "this host" (0.0.0.0/8, ::), link-local (169.254.0.0/16, fe80::/10: cloud metadata
// services live there), multicast (224.0.0.0/4, ff00::/8) and broadcast.
std::vector<Network> default_denied_destinations();

class Networks {
public:
    explicit Networks(std::vector<Network> networks) : networks_(std::move(networks)) {}
    // The first network that contains `address`, or nullptr.
    const Network* match(const Address& address) const;
    bool allows(const Address& address) const { return match(address) != nullptr; }

private:
    std::vector<Network> networks_;
};

}  // namespace proxy::access
