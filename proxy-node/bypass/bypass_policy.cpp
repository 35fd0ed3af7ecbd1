#include "bypass/bypass_policy.hpp"

#include "certs/names.hpp"

namespace proxy::bypass {

namespace {

std::string learned_key(std::string_view server_name, std::string_view connect_host, std::uint16_t port) {
    return std::string(server_name.empty() ? connect_host : server_name) + '@' + std::string(connect_host) + ':' +
           std::to_string(port);
}

}  // namespace

BypassPolicy::BypassPolicy(const BypassRules& rules)
    : rules_(rules), patterns_(rules.patterns), learned_(rules.learned_entries) {}

std::optional<BypassDecision> BypassPolicy::decide(std::string_view server_name, std::string_view connect_host,
                                                   std::uint16_t port) {
    const std::string_view name = server_name.empty() ? connect_host : server_name;
    if (const HostPattern* p = patterns_.match(name)) {
        if (name == connect_host || patterns_.match(connect_host) != nullptr)
            return BypassDecision{Reason::bypass_pattern, "pattern:" + p->text,
                                  "host matches the bypass pattern " + p->text};
    }
    if (auto e = learned_.find(learned_key(server_name, connect_host, port))) {
        if (e->reason == LearnedReason::client_certificate)
            return BypassDecision{Reason::bypass_client_certificate, "client_certificate",
                                  "remembered: " + e->detail};
        return BypassDecision{Reason::bypass_learned, "learned", "remembered: " + e->detail};
    }
    return std::nullopt;
}

bool BypassPolicy::covers_connect(std::string_view connect_host, std::uint16_t port) {
    return patterns_.match(connect_host) != nullptr || learned_.find(learned_key("", connect_host, port)).has_value();
}

void BypassPolicy::remember_client_certificate(std::string_view server_name, std::string_view connect_host,
                                               std::uint16_t port) {
    if (rules_.client_certificate != Rule::tunnel) return;
    learned_.remember(learned_key(server_name, connect_host, port), LearnedReason::client_certificate,
                      rules_.client_certificate_memory, "the server requested a client certificate");
}

bool BypassPolicy::learn_rejection(std::string_view server_name, std::string_view connect_host, std::uint16_t port,
                                   std::string_view alert) {
    if (rules_.learn_rejected.count() <= 0 || rules_.learned_entries == 0) return false;
    if (alert != "unknown_ca" && alert != "bad_certificate" && alert != "certificate_unknown") return false;
    learned_.remember(learned_key(server_name, connect_host, port), LearnedReason::client_rejected,
                      rules_.learn_rejected, "a client rejected the forged certificate (" + std::string(alert) + ")");
    return true;
}

}  // namespace proxy::bypass
