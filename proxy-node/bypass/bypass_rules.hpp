#pragma once
// What the operator configured about tunnelling TLS without decrypting it ([bypass] in
// proxy-node.toml), as a plain struct.

#include "bypass/host_patterns.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace proxy::bypass {

enum class Rule { refuse, tunnel };

struct BypassRules {
    std::vector<HostPattern> patterns;  // `hosts` plus every `host_lists` file
    // A server that asks for a client certificate cannot be intercepted (the proxy cannot
    // present the client's certificate): tunnel it, or refuse it with an error page.
    Rule client_certificate = Rule::tunnel;
    std::chrono::seconds client_certificate_memory{3600};  // remembered, so later connections tunnel at once
    // When a client rejects the forged certificate (pinning), tunnel that host for this long; 0: off.
    std::chrono::seconds learn_rejected{0};
    std::size_t learned_entries = 10000;  // bound of the learned-host table (both kinds)
    // TLS the proxy cannot terminate: the client offers only versions/suites it does not support.
    Rule unsupported_tls = Rule::refuse;
    // Bytes that are not TLS in a CONNECT tunnel to one of `non_tls_ports`; other ports are always refused.
    Rule non_tls = Rule::refuse;
    std::vector<std::uint16_t> non_tls_ports{443};
};

}  // namespace proxy::bypass
