#include "mgmt/metrics.hpp"

#include "ca_client/ca_client.hpp"
#include "certs/leaf_cache.hpp"
#include "log/connection_log.hpp"

#include <sstream>

namespace proxy {

void Metrics::count(const std::string& d, Reason reason) {
    if (d == decision::kIntercepted) ++intercepted;
    else if (d == decision::kProxied) ++proxied;
    else if (d == decision::kBlocked) ++blocked;
    else if (d == decision::kBypassed) ++bypassed;
    else ++failed;
    if (reason != Reason::none) ++by_reason[static_cast<std::size_t>(reason)];
}

void InspectionMetrics::declare_rules(const std::vector<std::string>& rules) {
    for (const auto& r : rules) blocks.try_emplace(r);
}

void InspectionMetrics::count_block(const std::string& rule) {
    if (auto it = blocks.find(rule); it != blocks.end()) ++it->second;
}

std::string render_prometheus(const Metrics& m, const LeafCache& cache, const CaClient& ca) {
    std::ostringstream o;
    auto counter = [&](const char* name, const char* help, std::uint64_t v) {
        o << "# HELP " << name << ' ' << help << "\n# TYPE " << name << " counter\n" << name << ' ' << v << '\n';
    };
    auto gauge = [&](const char* name, const char* help, double v) {
        o << "# HELP " << name << ' ' << help << "\n# TYPE " << name << " gauge\n" << name << ' ' << v << '\n';
    };
    gauge("proxy_connections_active", "Connections being handled.", static_cast<double>(m.connections_active.load()));
    counter("proxy_connections_accepted_total", "Connections accepted.", m.connections_accepted.load());
    o << "# HELP proxy_connections_total Finished connections by decision.\n# TYPE proxy_connections_total counter\n";
    o << "proxy_connections_total{decision=\"intercepted\"} " << m.intercepted.load() << '\n'
      << "proxy_connections_total{decision=\"proxied\"} " << m.proxied.load() << '\n'
      << "proxy_connections_total{decision=\"blocked\"} " << m.blocked.load() << '\n'
      << "proxy_connections_total{decision=\"failed\"} " << m.failed.load() << '\n'
      << "proxy_connections_total{decision=\"bypassed\"} " << m.bypassed.load() << '\n';
    o << "# HELP proxy_refusals_total Blocked or failed connections by reason.\n# TYPE proxy_refusals_total counter\n";
    for (std::size_t i = 1; i < Metrics::kReasons; ++i)
        if (!is_bypass(static_cast<Reason>(i)))
            o << "proxy_refusals_total{reason=\"" << code(static_cast<Reason>(i)) << "\"} " << m.by_reason[i].load() << '\n';
    o << "# HELP proxy_bypassed_total Connections tunnelled without decryption, by reason.\n"
         "# TYPE proxy_bypassed_total counter\n";
    for (std::size_t i = 1; i < Metrics::kReasons; ++i)
        if (is_bypass(static_cast<Reason>(i)))
            o << "proxy_bypassed_total{reason=\"" << code(static_cast<Reason>(i)) << "\"} " << m.by_reason[i].load() << '\n';
    gauge("proxy_bypass_learned_hosts", "Hosts in the learned bypass table (client certificate, client rejections).",
          static_cast<double>(m.bypass_learned_hosts.load()));
    counter("proxy_bytes_client_to_upstream_total", "Payload bytes relayed towards servers.",
            m.bytes_client_to_upstream.load());
    counter("proxy_bytes_upstream_to_client_total", "Payload bytes relayed towards clients.",
            m.bytes_upstream_to_client.load());
    o << "# HELP proxy_upstream_tls_handshakes_total Completed upstream TLS handshakes, by whether a kept session "
         "was resumed.\n# TYPE proxy_upstream_tls_handshakes_total counter\n"
      << "proxy_upstream_tls_handshakes_total{resumed=\"true\"} " << m.upstream_resumed.load() << '\n'
      << "proxy_upstream_tls_handshakes_total{resumed=\"false\"} " << m.upstream_full.load() << '\n';
    const auto& in = m.inspection;
    o << "# HELP proxy_inspected_messages_total HTTP messages inspected, by direction.\n"
         "# TYPE proxy_inspected_messages_total counter\n"
      << "proxy_inspected_messages_total{direction=\"request\"} " << in.requests.load() << '\n'
      << "proxy_inspected_messages_total{direction=\"response\"} " << in.responses.load() << '\n';
    o << "# HELP proxy_inspected_bytes_total Decoded body bytes inspected, by direction.\n"
         "# TYPE proxy_inspected_bytes_total counter\n"
      << "proxy_inspected_bytes_total{direction=\"request\"} " << in.request_bytes.load() << '\n'
      << "proxy_inspected_bytes_total{direction=\"response\"} " << in.response_bytes.load() << '\n';
    counter("proxy_websocket_connections_total", "WebSocket connections inspected after their upgrade.",
            in.websocket_upgrades.load());
    o << "# HELP proxy_websocket_messages_total WebSocket messages (text and binary) inspected, by sender.\n"
         "# TYPE proxy_websocket_messages_total counter\n"
      << "proxy_websocket_messages_total{sender=\"client\"} " << in.websocket_client.load() << '\n'
      << "proxy_websocket_messages_total{sender=\"server\"} " << in.websocket_server.load() << '\n';
    counter("proxy_http2_connections_total", "Intercepted HTTP/2 connections inspected (h2 on both sides).",
            in.h2_connections.load());
    counter("proxy_http2_streams_total", "HTTP/2 streams (request and response pairs) relayed under inspection.",
            in.h2_streams.load());
    o << "# HELP proxy_http2_stream_resets_total HTTP/2 streams reset, by who reset them (the node resets a "
         "stream whose response was blocked after it started, or whose peer reset the other half).\n"
         "# TYPE proxy_http2_stream_resets_total counter\n"
      << "proxy_http2_stream_resets_total{by=\"client\"} " << in.h2_resets_client.load() << '\n'
      << "proxy_http2_stream_resets_total{by=\"upstream\"} " << in.h2_resets_upstream.load() << '\n'
      << "proxy_http2_stream_resets_total{by=\"node\"} " << in.h2_resets_node.load() << '\n';
    counter("proxy_inspection_over_limit_total", "Bodies longer than inspection.max_scan_bytes.", in.over_limit.load());
    counter("proxy_inspection_rewritten_total", "Requests sent upstream as an inspection engine modified them (ICAP REQMOD).",
            in.rewritten.load());
    counter("proxy_uninspected_connections_total",
            "Connections relayed uninspected, wholly or after an upgrade (inspection.non_http = \"tunnel\").",
            in.uninspected.load());
    o << "# HELP proxy_inspection_blocks_total Messages blocked by inspection, by rule.\n"
         "# TYPE proxy_inspection_blocks_total counter\n";
    for (const auto& [rule, n] : in.blocks) o << "proxy_inspection_blocks_total{rule=\"" << rule << "\"} " << n.load() << '\n';
    const auto& ml = m.mail;
    o << "# HELP proxy_mail_messages_total Mail transactions over SMTP, by outcome (relayed; blocked by inspection; "
         "refused by the node: too big, engine unavailable; rejected by the server).\n"
         "# TYPE proxy_mail_messages_total counter\n"
      << "proxy_mail_messages_total{outcome=\"relayed\"} " << ml.relayed.load() << '\n'
      << "proxy_mail_messages_total{outcome=\"blocked\"} " << ml.blocked.load() << '\n'
      << "proxy_mail_messages_total{outcome=\"refused\"} " << ml.refused.load() << '\n'
      << "proxy_mail_messages_total{outcome=\"rejected\"} " << ml.rejected.load() << '\n';
    counter("proxy_mail_starttls_total", "SMTP sessions encrypted with STARTTLS on both sides.", ml.starttls.load());
    counter("proxy_mail_opportunistic_tls_total",
            "Mail servers whose certificate failed validation, used anyway (smtp.tls = \"opportunistic\").",
            ml.opportunistic.load());
    counter("proxy_mail_upstream_tls_refused_total",
            "STARTTLS to the mail server failed or its certificate was refused (strict); the client got 421.",
            ml.upstream_tls_refused.load());
    counter("proxy_mail_no_starttls_total", "Mail servers that offered no STARTTLS.", ml.no_starttls.load());
    counter("proxy_mail_injection_discarded_total",
            "Plaintext a peer sent after STARTTLS, before the TLS handshake, discarded (command injection).",
            ml.injection_discarded.load());
    const auto& cs = cache.stats();
    gauge("proxy_leaf_cache_names", "Names covered by cached leaf certificates.", static_cast<double>(cache.size()));
    counter("proxy_leaf_cache_hits_total", "Connections served from a cached certificate.", cs.hits.load());
    counter("proxy_leaf_cache_misses_total", "Lookups that found no valid certificate.", cs.misses.load());
    counter("proxy_leaf_cache_joined_total", "Requests that joined another's in-flight issuance.", cs.joined.load());
    counter("proxy_leaf_issued_total", "Certificates obtained from the ca-service.", cs.issued.load());
    counter("proxy_leaf_failed_total", "Certificate requests that failed.", cs.failed.load());
    counter("proxy_leaf_renewals_total", "Background renewals started.", cs.renewals.load());
    counter("proxy_leaf_evictions_total", "Names evicted from the cache (LRU).", cs.evictions.load());
    const auto& ca_stats = ca.stats();
    gauge("proxy_ca_service_available", "1 when the last contact with the ca-service succeeded.", ca.available() ? 1 : 0);
    gauge("proxy_ca_service_node_revoked", "1 while the ca-service refuses this node as revoked.",
          ca.revoked() ? 1 : 0);
    counter("proxy_ca_requests_total", "Leaf requests sent to the ca-service.", ca_stats.requests.load());
    counter("proxy_ca_retries_total", "Retries of leaf requests.", ca_stats.retries.load());
    counter("proxy_ca_unavailable_total", "Leaf requests that failed for lack of the service.",
            ca_stats.unavailable.load());
    counter("proxy_ca_refused_total", "Leaf requests the service refused.", ca_stats.refused.load());
    gauge("proxy_identity_not_after_seconds", "Unix time when this node's mTLS identity expires.",
          static_cast<double>(ca_stats.identity_not_after.load()));
    counter("proxy_identity_renewals_total", "Identity renewals installed.", ca_stats.identity_renewals.load());
    counter("proxy_identity_renewal_failures_total", "Identity renewals that failed (retried).",
            ca_stats.identity_renewal_failures.load());
    gauge("proxy_draining", "1 while shutting down.", m.draining.load() ? 1 : 0);
    return o.str();
}

}  // namespace proxy
