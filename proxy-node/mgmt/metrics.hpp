#pragma once
// Counters the proxy keeps for Prometheus (text exposition format 0.0.4).

#include "upstream/reason.hpp"

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <vector>
#include <string>

namespace proxy {

class CaClient;
class LeafCache;

// Inspection of decrypted HTTP (inspect/). Rule labels are declared once at start, before
// any connection, so counting needs no lock.
struct InspectionMetrics {
    std::atomic<std::uint64_t> requests{0}, responses{0};            // messages inspected
    std::atomic<std::uint64_t> request_bytes{0}, response_bytes{0};  // decoded body bytes seen
    std::atomic<std::uint64_t> over_limit{0};  // bodies longer than max_scan_bytes
    std::atomic<std::uint64_t> rewritten{0};   // requests sent upstream as an engine modified them
    std::atomic<std::uint64_t> uninspected{0};  // connections relayed (partly) uninspected by non_http = "tunnel"
    std::atomic<std::uint64_t> websocket_upgrades{0};                    // WebSocket connections inspected
    std::atomic<std::uint64_t> websocket_client{0}, websocket_server{0};  // WebSocket messages inspected, by sender
    std::atomic<std::uint64_t> h2_connections{0}, h2_streams{0};         // HTTP/2 under inspection (h2/)
    std::atomic<std::uint64_t> h2_resets_client{0}, h2_resets_upstream{0}, h2_resets_node{0};  // streams reset, by whom
    std::map<std::string, std::atomic<std::uint64_t>> blocks;  // by rule

    void declare_rules(const std::vector<std::string>& rules);
    void count_block(const std::string& rule);
};

// E-mail relayed over SMTP (mail/smtp_relay.hpp): mail transactions by their outcome, and
// the STARTTLS events an operator watches.
struct MailMetrics {
    std::atomic<std::uint64_t> relayed{0}, blocked{0}, refused{0}, rejected{0};  // as MailRecord::decision
    std::atomic<std::uint64_t> starttls{0};            // sessions encrypted on both sides
    std::atomic<std::uint64_t> opportunistic{0};       // server certificates that failed validation, used anyway
    std::atomic<std::uint64_t> upstream_tls_refused{0};  // STARTTLS upstream failed (strict), 421 to the client
    std::atomic<std::uint64_t> no_starttls{0};         // servers without STARTTLS (refused or relayed in clear)
    std::atomic<std::uint64_t> injection_discarded{0};  // plaintext pipelined after STARTTLS, discarded
};

struct Metrics {
    static constexpr std::size_t kReasons = static_cast<std::size_t>(kLastReason) + 1;

    std::atomic<std::uint64_t> connections_active{0};
    std::atomic<std::uint64_t> connections_accepted{0};
    std::atomic<std::uint64_t> intercepted{0}, proxied{0}, blocked{0}, failed{0}, bypassed{0};
    std::atomic<std::uint64_t> bypass_learned_hosts{0};  // gauge: entries in the learned-host table
    std::array<std::atomic<std::uint64_t>, kReasons> by_reason{};
    std::atomic<std::uint64_t> bytes_client_to_upstream{0}, bytes_upstream_to_client{0};
    // Completed upstream TLS handshakes: abbreviated (a kept session resumed) or full.
    std::atomic<std::uint64_t> upstream_resumed{0}, upstream_full{0};
    std::atomic<bool> draining{false};
    InspectionMetrics inspection;
    MailMetrics mail;

    void count(const std::string& decision, Reason reason);
};

std::string render_prometheus(const Metrics& m, const LeafCache& cache, const CaClient& ca);

}  // namespace proxy
