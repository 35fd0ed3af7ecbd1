#pragma once
// Decides whether a CONNECT tunnel is passed through without decrypting it, and remembers
// the hosts it learns to tunnel. A pattern must match the TLS server name (SNI) and, when
// the client connected to a different name, that name too: a client cannot get a tunnel
// to an arbitrary server by sending the SNI of a bypassed one. Learned entries are keyed
// by server name, CONNECT host and port for the same reason.

#include "bypass/bypass_rules.hpp"
#include "bypass/learned_hosts.hpp"
#include "upstream/reason.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace proxy::bypass {

struct BypassDecision {
    Reason reason = Reason::none;  // bypass_pattern, bypass_client_certificate, bypass_learned
    std::string log_reason;        // "pattern:*.bank.example", "client_certificate", "learned"
    std::string detail;
};

class BypassPolicy {
public:
    explicit BypassPolicy(const BypassRules& rules);

    // `server_name`: the SNI, empty when there was none; the others are the CONNECT target.
    std::optional<BypassDecision> decide(std::string_view server_name, std::string_view connect_host,
                                         std::uint16_t port);
    // Before the ClientHello is read: would a client sending SNI == connect_host be tunnelled?
    // (Such connections need no certificate from the ca-service.)
    bool covers_connect(std::string_view connect_host, std::uint16_t port);

    // The upstream asked for a client certificate: tunnel it from now on (if the rule says so).
    void remember_client_certificate(std::string_view server_name, std::string_view connect_host, std::uint16_t port);
    // A client rejected the forged certificate with `alert`; true if the host is now learned.
    bool learn_rejection(std::string_view server_name, std::string_view connect_host, std::uint16_t port,
                         std::string_view alert);

    const BypassRules& rules() const { return rules_; }
    std::size_t learned_hosts() const { return learned_.size(); }

private:
    const BypassRules& rules_;
    HostPatterns patterns_;
    LearnedHosts learned_;
};

// Decision text for the rule-based tunnels (unsupported TLS, non-TLS bytes).
inline constexpr std::string_view kRuleLogReason = "rule";

}  // namespace proxy::bypass
