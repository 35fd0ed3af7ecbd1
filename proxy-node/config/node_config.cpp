#include "config/node_config.hpp"

#include "ossl/encoding.hpp"
#include "settings/toml_reader.hpp"

#include <arpa/inet.h>

#include <cctype>
#include <functional>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>

namespace proxy {

namespace {

constexpr std::int64_t kMaxThreads = 256;
constexpr std::int64_t kMaxTimeoutMs = 3600 * 1000;
constexpr std::int64_t kMaxConnections = 1'000'000;
constexpr std::int64_t kMinHeadBytes = 1024;
constexpr std::int64_t kMaxHeadBytes = 1024 * 1024;
constexpr std::int64_t kMinBufferBytes = 4 * 1024;
constexpr std::int64_t kMaxBufferBytes = 4 * 1024 * 1024;
constexpr std::int64_t kMaxLifetimeSeconds = 30LL * 24 * 3600;
constexpr std::size_t kMaxRuleName = 64;
constexpr std::size_t kMinPatternBytes = 4;       // shorter ones would match everywhere
constexpr std::size_t kMaxPatternBytes = 1024;    // = inspect::PatternSet limits
constexpr std::size_t kMaxPatternTotal = 16 * 1024;
constexpr std::int64_t kMaxScanBytes = 1LL << 40;
constexpr std::int64_t kMaxHoldBytes = 64LL << 20;

using Reader = settings::TomlReader;

std::chrono::milliseconds millis(const Reader& r, const std::string& key, std::chrono::milliseconds fallback) {
    return std::chrono::milliseconds(r.integer(key, fallback.count(), 1, kMaxTimeoutMs));
}

bool is_ip_literal(const std::string& s) {
    unsigned char buf[16];
    return ::inet_pton(AF_INET, s.c_str(), buf) == 1 || ::inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

bool valid_rule_name(const std::string& n) {
    if (n.empty() || n.size() > kMaxRuleName) return false;
    for (char ch : n)
        if (!(std::islower(static_cast<unsigned char>(ch)) || std::isdigit(static_cast<unsigned char>(ch)) || ch == '.' ||
              ch == '_' || ch == '-'))
            return false;
    return true;
}

// A table of rule name -> string, each name valid and not used twice (the names are log
// and metric labels).
using RuleConvert = std::function<void(const std::string& key, const std::string& name, const std::string& value)>;

void rule_table(const Reader& r, const std::string& key, std::set<std::string>& used, const RuleConvert& convert) {
    const auto* n = r.node(key);
    if (n == nullptr) return;
    const auto* t = n->as_table();
    if (t == nullptr) r.fail(key, "must be a table of \"rule-name\" = \"...\"");
    for (const auto& [k, v] : *t) {
        const std::string name(k.str());
        const std::string full = key + "." + name;
        if (!valid_rule_name(name)) r.fail(full, "rule names are 1-64 characters of a-z 0-9 . _ -");
        if (!used.insert(name).second) r.fail(full, "rule name used twice");
        auto text = v.value_exact<std::string>();
        if (!text) r.fail(full, "must be a string");
        convert(full, name, *text);
    }
}

void load_inspection(const Reader& r, NodeConfig& c) {
    auto& in = c.inspection;
    in.enabled = r.boolean("inspection.enabled", in.enabled);
    in.eicar = r.boolean("inspection.eicar", in.eicar);
    std::set<std::string> used{"eicar", "scan_limit"};  // built-in names
    rule_table(r, "inspection.patterns", used, [&](const std::string& key, const std::string& name, const std::string& v) {
        std::vector<std::uint8_t> bytes;
        if (v.rfind("hex:", 0) == 0) {
            auto raw = ossl::from_hex(v.substr(4));
            if (!raw) r.fail(key, "is not valid hex after 'hex:'");
            bytes.assign(raw->begin(), raw->end());
        } else if (v.rfind("text:", 0) == 0) {
            bytes.assign(v.begin() + 5, v.end());
        } else {
            r.fail(key, "must start with 'hex:' or 'text:'");
        }
        if (bytes.size() < kMinPatternBytes || bytes.size() > kMaxPatternBytes)
            r.fail(key, "a pattern must be " + std::to_string(kMinPatternBytes) + " to " +
                            std::to_string(kMaxPatternBytes) + " bytes long (is " + std::to_string(bytes.size()) + ")");
        in.patterns.emplace_back(name, std::move(bytes));
    });
    std::size_t total = 0;
    for (const auto& p : in.patterns) total += p.second.size();
    if (total > kMaxPatternTotal)
        r.fail("inspection.patterns", "patterns total " + std::to_string(total) + " bytes, over the limit of " +
                                          std::to_string(kMaxPatternTotal));
    rule_table(r, "inspection.sha256", used, [&](const std::string& key, const std::string& name, const std::string& v) {
        auto raw = ossl::from_hex(v);
        if (!raw || raw->size() != 32) r.fail(key, "must be a SHA-256 as 64 hex digits");
        in.sha256.emplace_back(name, std::vector<std::uint8_t>(raw->begin(), raw->end()));
    });
    in.max_scan_bytes = static_cast<std::uint64_t>(
        r.integer("inspection.max_scan_bytes", static_cast<std::int64_t>(in.max_scan_bytes), 1, kMaxScanBytes));
    const std::string over = r.string("inspection.over_limit", "allow");
    if (over != "allow" && over != "block") r.fail("inspection.over_limit", "must be \"allow\" or \"block\"");
    in.over_limit_block = over == "block";
    in.hold_bytes = static_cast<std::size_t>(
        r.integer("inspection.hold_bytes", static_cast<std::int64_t>(in.hold_bytes), 0, kMaxHoldBytes));
    const std::string non_http = r.string("inspection.non_http", "block");
    if (non_http != "block" && non_http != "tunnel") r.fail("inspection.non_http", "must be \"block\" or \"tunnel\"");
    in.non_http_tunnel = non_http == "tunnel";
    in.head_bytes = static_cast<std::size_t>(
        r.integer("inspection.head_bytes", static_cast<std::int64_t>(in.head_bytes), kMinHeadBytes, kMaxHeadBytes));
    if (in.enabled) {
        // The parser reads HTTP/1.1 only: h2 is not offered upstream, so clients fall back.
        std::vector<std::string> alpn;
        for (const auto& p : c.upstream.alpn)
            if (p == "http/1.1") alpn.push_back(p);
        if (alpn.empty() && r.node("upstream.alpn") != nullptr)
            r.fail("upstream.alpn", "must include \"http/1.1\" while [inspection] is enabled (only HTTP/1.1 is inspected)");
        c.upstream.alpn = alpn;
    }
}

}  // namespace


NodeConfig load_node_config(const std::filesystem::path& file) {
    const toml::table root = Reader::parse_file(file);
    const Reader r(root, file, "proxy-node/README.md");
    r.only_keys("", {"node", "listen", "ca_service", "upstream", "leaf", "limits", "log", "threads", "inspection"});
    r.only_keys("node", {"name"});
    r.only_keys("listen", {"proxy", "management"});
    r.only_keys("ca_service", {"url", "server_ca", "certificate", "private_key", "connect_timeout_ms",
                               "request_timeout_ms", "connections", "max_attempts", "retry_base_delay_ms",
                               "health_interval_ms"});
    r.only_keys("upstream", {"extra_ca", "system_trust", "hosts", "alpn", "session_cache_entries"});
    r.only_keys("leaf", {"lifetime_seconds", "key_rotation_seconds", "renew_fraction", "cache_entries", "max_names"});
    r.only_keys("limits", {"max_connections", "request_head_bytes", "relay_buffer_bytes", "request_timeout_ms",
                           "client_hello_timeout_ms", "upstream_connect_timeout_ms", "handshake_timeout_ms",
                           "certificate_timeout_ms", "idle_timeout_seconds", "drain_timeout_seconds"});
    r.only_keys("log", {"connections"});
    r.only_keys("inspection", {"enabled", "eicar", "patterns", "sha256", "max_scan_bytes", "over_limit", "hold_bytes",
                               "non_http", "head_bytes"});
    r.only_keys("threads", {"workers"});

    NodeConfig c;
    c.source = file;
    c.name = r.string("node.name");
    c.proxy_listen = r.endpoint("listen.proxy");
    c.management_listen = r.endpoint("listen.management");

    auto& cs = c.ca_service;
    const std::string url = r.string("ca_service.url");
    constexpr std::string_view kScheme = "https://";
    if (url.rfind(kScheme, 0) != 0) r.fail("ca_service.url", "must start with https:// (is '" + url + "')");
    std::string hostport = url.substr(kScheme.size());
    if (!hostport.empty() && hostport.back() == '/') hostport.pop_back();
    Endpoint ca_ep;
    try {
        ca_ep = settings::parse_endpoint(hostport);
    } catch (const std::invalid_argument& e) {
        r.fail("ca_service.url", e.what());
    }
    cs.host = ca_ep.host;
    cs.port = ca_ep.port;
    cs.server_ca = r.existing_file("ca_service.server_ca", true);
    cs.certificate = r.existing_file("ca_service.certificate", true);
    cs.private_key = r.existing_file("ca_service.private_key", true);
    cs.connect_timeout = millis(r, "ca_service.connect_timeout_ms", cs.connect_timeout);
    cs.request_timeout = millis(r, "ca_service.request_timeout_ms", cs.request_timeout);
    cs.connections = static_cast<unsigned>(r.integer("ca_service.connections", cs.connections, 1, 64));
    cs.max_attempts = static_cast<unsigned>(r.integer("ca_service.max_attempts", cs.max_attempts, 1, 10));
    cs.retry_base_delay = millis(r, "ca_service.retry_base_delay_ms", cs.retry_base_delay);
    cs.health_interval = millis(r, "ca_service.health_interval_ms", cs.health_interval);

    auto& up = c.upstream;
    up.extra_ca = r.existing_file("upstream.extra_ca", false);
    up.system_trust = r.boolean("upstream.system_trust", up.system_trust);
    if (!up.system_trust && up.extra_ca.empty())
        r.fail("upstream.system_trust", "is false but upstream.extra_ca is not set: no upstream could be trusted");
    if (const auto* hosts = r.node("upstream.hosts")) {
        const auto* t = hosts->as_table();
        if (t == nullptr) r.fail("upstream.hosts", "must be a table of \"name\" = \"IP address\"");
        for (const auto& [k, v] : *t) {
            auto ip = v.value_exact<std::string>();
            std::string key = "upstream.hosts." + std::string(k.str());
            if (!ip || !is_ip_literal(*ip)) r.fail(key, "must be an IPv4 or IPv6 address literal");
            std::string name(k.str());
            for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
            up.hosts[name] = *ip;
        }
    }
    up.alpn = r.strings("upstream.alpn", up.alpn);
    for (const auto& p : up.alpn)
        if (p.empty() || p.size() > 255) r.fail("upstream.alpn", "protocol names must be 1-255 bytes");
    up.session_cache_entries = static_cast<std::size_t>(
        r.integer("upstream.session_cache_entries", static_cast<std::int64_t>(up.session_cache_entries), 0, 10'000'000));

    auto& lf = c.leaf;
    lf.lifetime = std::chrono::seconds(r.integer("leaf.lifetime_seconds", lf.lifetime.count(), 300, kMaxLifetimeSeconds));
    lf.key_rotation =
        std::chrono::seconds(r.integer("leaf.key_rotation_seconds", lf.key_rotation.count(), 60, kMaxLifetimeSeconds));
    lf.renew_fraction = r.number("leaf.renew_fraction", lf.renew_fraction, 0.1, 0.95);
    lf.cache_entries =
        static_cast<std::size_t>(r.integer("leaf.cache_entries", static_cast<std::int64_t>(lf.cache_entries), 1, 10'000'000));
    lf.max_names = static_cast<std::size_t>(r.integer("leaf.max_names", static_cast<std::int64_t>(lf.max_names), 1, 100));

    auto& lim = c.limits;
    lim.max_connections = static_cast<std::size_t>(
        r.integer("limits.max_connections", static_cast<std::int64_t>(lim.max_connections), 1, kMaxConnections));
    lim.request_head_bytes = static_cast<std::size_t>(r.integer(
        "limits.request_head_bytes", static_cast<std::int64_t>(lim.request_head_bytes), kMinHeadBytes, kMaxHeadBytes));
    lim.relay_buffer_bytes = static_cast<std::size_t>(r.integer(
        "limits.relay_buffer_bytes", static_cast<std::int64_t>(lim.relay_buffer_bytes), kMinBufferBytes, kMaxBufferBytes));
    lim.request_timeout = millis(r, "limits.request_timeout_ms", lim.request_timeout);
    lim.client_hello_timeout = millis(r, "limits.client_hello_timeout_ms", lim.client_hello_timeout);
    lim.upstream_connect_timeout = millis(r, "limits.upstream_connect_timeout_ms", lim.upstream_connect_timeout);
    lim.handshake_timeout = millis(r, "limits.handshake_timeout_ms", lim.handshake_timeout);
    lim.certificate_timeout = millis(r, "limits.certificate_timeout_ms", lim.certificate_timeout);
    lim.idle_timeout = std::chrono::seconds(r.integer("limits.idle_timeout_seconds", lim.idle_timeout.count(), 1, 86400));
    lim.drain_timeout =
        std::chrono::seconds(r.integer("limits.drain_timeout_seconds", lim.drain_timeout.count(), 0, 3600));

    load_inspection(r, c);

    c.connection_log = r.string("log.connections", "-");
    if (c.connection_log == "-") c.connection_log.clear();
    c.worker_threads = static_cast<unsigned>(r.integer("threads.workers", 0, 0, kMaxThreads));
    return c;
}

}  // namespace proxy
