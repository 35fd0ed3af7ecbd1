#include "config/node_config.hpp"

#include "certs/names.hpp"

#include "inspect/icap/icap_protocol.hpp"
#include "ossl/encoding.hpp"
#include "settings/toml_reader.hpp"

#include <arpa/inet.h>

#include <algorithm>
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
constexpr std::int64_t kMaxLearnSeconds = 30LL * 24 * 3600;
constexpr std::int64_t kMaxLearnedEntries = 10'000'000;
constexpr std::size_t kMaxNetworks = 10000;
constexpr std::size_t kMaxHostLists = 100;
constexpr std::size_t kMaxProxyListeners = 16;
constexpr std::size_t kMaxRuleName = 64;
constexpr std::size_t kMinPatternBytes = 4;       // shorter ones would match everywhere
constexpr std::size_t kMaxPatternBytes = 1024;    // = inspect::PatternSet limits
constexpr std::size_t kMaxPatternTotal = 16 * 1024;
constexpr std::int64_t kMaxScanBytes = 1LL << 40;
constexpr std::int64_t kMaxHoldBytes = 64LL << 20;
constexpr std::size_t kMaxStreamTypes = 64;

using Reader = settings::TomlReader;

std::chrono::milliseconds millis(const Reader& r, const std::string& key, std::chrono::milliseconds fallback) {
    return std::chrono::milliseconds(r.integer(key, fallback.count(), 1, kMaxTimeoutMs));
}

bool is_ip_literal(const std::string& s) {
    unsigned char buf[16];
    return ::inet_pton(AF_INET, s.c_str(), buf) == 1 || ::inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

// listen.proxy (required) or listen.transparent (optional): "H:P", or a list of them (e.g.
// an IPv4 and an IPv6 address).
std::vector<Endpoint> listeners(const Reader& r, const std::string& kKey, bool required) {
    const auto* n = r.node(kKey);
    if (n == nullptr && !required) return {};
    if (n == nullptr || !n->is_array()) return {r.endpoint(kKey)};
    std::vector<Endpoint> out;
    for (const auto& text : r.strings(kKey)) {
        Endpoint ep;
        try {
            ep = settings::parse_endpoint(text);
        } catch (const std::invalid_argument& e) {
            r.fail(kKey, e.what());
        }
        if (!is_ip_literal(ep.host)) r.fail(kKey, "'" + ep.host + "' is not an IP address to listen on");
        for (const auto& other : out)
            if (other.host == ep.host && other.port == ep.port) r.fail(kKey, "'" + text + "' is listed twice");
        out.push_back(ep);
    }
    if (out.empty()) r.fail(kKey, "is empty: give at least one \"address:port\"");
    if (out.size() > kMaxProxyListeners) r.fail(kKey, "more than " + std::to_string(kMaxProxyListeners) + " addresses");
    return out;
}

bypass::Rule rule(const Reader& r, const std::string& key, bypass::Rule fallback) {
    const std::string v = r.string(key, fallback == bypass::Rule::tunnel ? "tunnel" : "refuse");
    if (v == "refuse") return bypass::Rule::refuse;
    if (v == "tunnel") return bypass::Rule::tunnel;
    r.fail(key, "must be \"refuse\" or \"tunnel\" (is '" + v + "')");
}

// A CIDR list at `key`, or `defaults` when the key is absent.
std::vector<access::Network> networks_at(const Reader& r, const char* key, std::vector<access::Network> defaults) {
    if (r.node(key) == nullptr) return defaults;
    const auto texts = r.strings(key);
    if (texts.size() > kMaxNetworks) r.fail(key, "more than " + std::to_string(kMaxNetworks) + " networks");
    std::vector<access::Network> out;
    for (const auto& t : texts) {
        std::string error;
        auto n = access::parse_network(t, error);
        if (!n) r.fail(key, error);
        out.push_back(std::move(*n));
    }
    return out;
}

std::vector<access::Network> allowed_clients(const Reader& r) {
    constexpr const char* kKey = "access.allowed_clients";
    auto out = networks_at(r, kKey, access::default_allowed_clients());
    if (out.empty()) r.fail(kKey, "is empty: no client could use the proxy (list networks, e.g. [\"10.0.0.0/8\"])");
    return out;
}

bypass::BypassRules bypass_rules(const Reader& r) {
    bypass::BypassRules b;
    for (const auto& t : r.strings("bypass.hosts")) {
        std::string error;
        auto p = bypass::parse_host_pattern(t, error);
        if (!p) r.fail("bypass.hosts", error);
        b.patterns.push_back(std::move(*p));
    }
    const auto lists = r.strings("bypass.host_lists");
    if (lists.size() > kMaxHostLists) r.fail("bypass.host_lists", "more than " + std::to_string(kMaxHostLists) + " files");
    for (const auto& file : lists) {
        std::error_code ec;
        if (file.empty() || !std::filesystem::is_regular_file(file, ec))
            r.fail("bypass.host_lists", "'" + file + "' does not exist or is not a file");
        try {
            auto more = bypass::load_host_list(file);
            b.patterns.insert(b.patterns.end(), more.begin(), more.end());
        } catch (const std::runtime_error& e) {
            r.fail("bypass.host_lists", e.what());
        }
    }
    b.client_certificate = rule(r, "bypass.client_certificate", b.client_certificate);
    b.client_certificate_memory = std::chrono::seconds(r.integer(
        "bypass.client_certificate_memory_seconds", b.client_certificate_memory.count(), 0, kMaxLearnSeconds));
    b.learn_rejected =
        std::chrono::seconds(r.integer("bypass.learn_rejected_seconds", b.learn_rejected.count(), 0, kMaxLearnSeconds));
    b.learned_entries = static_cast<std::size_t>(
        r.integer("bypass.learned_entries", static_cast<std::int64_t>(b.learned_entries), 0, kMaxLearnedEntries));
    b.unsupported_tls = rule(r, "bypass.unsupported_tls", b.unsupported_tls);
    b.non_tls = rule(r, "bypass.non_tls", b.non_tls);
    if (const auto* ports = r.node("bypass.non_tls_ports")) {
        const auto* arr = ports->as_array();
        if (arr == nullptr) r.fail("bypass.non_tls_ports", "must be an array of port numbers, e.g. [443]");
        b.non_tls_ports.clear();
        for (const auto& e : *arr) {
            auto v = e.value_exact<std::int64_t>();
            if (!v || *v < 1 || *v > 65535) r.fail("bypass.non_tls_ports", "must be an array of port numbers 1-65535");
            b.non_tls_ports.push_back(static_cast<std::uint16_t>(*v));
        }
    }
    return b;
}

// type "/" subtype, both RFC 9110 tokens, no parameters.
bool valid_media_type(const std::string& t) {
    auto token = [](std::string_view s) {
        return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char ch) {
            return std::isalnum(ch) != 0 || std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(ch)) != std::string_view::npos;
        });
    };
    const auto slash = t.find('/');
    if (slash == std::string::npos || t.size() > 255) return false;
    return token(std::string_view(t).substr(0, slash)) && token(std::string_view(t).substr(slash + 1));
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
    in.stream_types = r.strings("inspection.stream_types", in.stream_types);
    if (in.stream_types.size() > kMaxStreamTypes)
        r.fail("inspection.stream_types", "more than " + std::to_string(kMaxStreamTypes) + " media types");
    for (auto& t : in.stream_types) {
        std::transform(t.begin(), t.end(), t.begin(), [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
        if (!valid_media_type(t))
            r.fail("inspection.stream_types", "\"" + t + "\" is not a media type (type/subtype, e.g. \"text/event-stream\")");
    }
    const std::string non_http = r.string("inspection.non_http", "block");
    if (non_http != "block" && non_http != "tunnel") r.fail("inspection.non_http", "must be \"block\" or \"tunnel\"");
    in.non_http_tunnel = non_http == "tunnel";
    in.websocket_max_message_bytes = static_cast<std::uint64_t>(
        r.integer("inspection.websocket_max_message_bytes", static_cast<std::int64_t>(in.websocket_max_message_bytes),
                  1024, std::int64_t{1} << 32));
    const std::string plain = r.string("inspection.plain_tunnels", "inspect");
    if (plain != "inspect" && plain != "refuse") r.fail("inspection.plain_tunnels", "must be \"inspect\" or \"refuse\"");
    in.inspect_plain_tunnels = plain == "inspect";
    in.verdict_timeout_ms =
        static_cast<std::uint32_t>(r.integer("inspection.verdict_timeout_ms", in.verdict_timeout_ms, 100, 600000));
    in.head_bytes = static_cast<std::size_t>(
        r.integer("inspection.head_bytes", static_cast<std::int64_t>(in.head_bytes), kMinHeadBytes, kMaxHeadBytes));
    in.http2 = r.boolean("inspection.http2", in.http2);
    if (in.enabled) {
        // Only what the relays read is offered upstream: HTTP/1.1, and h2 unless
        // inspection.http2 = false (then an h2 client falls back to HTTP/1.1).
        std::vector<std::string> alpn;
        for (const auto& p : c.upstream.alpn)
            if (p == "http/1.1" || (p == "h2" && in.http2)) alpn.push_back(p);
        if (std::find(alpn.begin(), alpn.end(), "http/1.1") == alpn.end() && r.node("upstream.alpn") != nullptr)
            r.fail("upstream.alpn", "must include \"http/1.1\" while [inspection] is enabled (HTTP/1.1 and h2 are "
                                    "inspected; a client that offers neither could not be served)");
        c.upstream.alpn = alpn;
    }
}

// [icap.NAME] tables, one per ICAP service.
void load_icap(const Reader& r, const toml::table& root, NodeConfig& c) {
    const auto* icap = root.get("icap");
    if (icap == nullptr) return;
    if (!icap->is_table()) r.fail("icap", "must be tables [icap.NAME], one per ICAP service");
    for (const auto& [key, node] : *icap->as_table()) {
        IcapServiceSection s;
        s.name = std::string(key.str());
        const std::string at = "icap." + s.name;
        if (!node.is_table()) r.fail(at, "must be a table with url = \"icap://host:port/service\"");
        if (s.name.empty() || s.name.size() > 32 || !std::all_of(s.name.begin(), s.name.end(), [](unsigned char ch) {
                return std::islower(ch) || std::isdigit(ch) || ch == '-' || ch == '_';
            }))
            r.fail(at, "the service name must be 1-32 characters of a-z, 0-9, '-' or '_'");
        r.only_keys(at, {"url", "mode", "on_error", "tls_ca_file", "connect_timeout_ms", "io_timeout_ms",
                         "transaction_timeout_ms", "retry_interval_ms", "max_connections", "send_bodiless"});
        s.url = r.string(at + ".url");
        icap::ServiceUrl url;
        try {
            url = icap::parse_service_url(s.url);
        } catch (const std::invalid_argument& e) {
            r.fail(at + ".url", e.what());
        }
        const std::string mode = r.string(at + ".mode", "both");
        if (mode == "reqmod") s.respmod = false;
        else if (mode == "respmod") s.reqmod = false;
        else if (mode != "both") r.fail(at + ".mode", "must be \"reqmod\", \"respmod\" or \"both\" (is '" + mode + "')");
        const std::string on_error = r.string(at + ".on_error", "block");
        if (on_error != "block" && on_error != "allow")
            r.fail(at + ".on_error", "must be \"block\" (fail closed) or \"allow\" (is '" + on_error + "')");
        s.on_error_allow = on_error == "allow";
        s.tls_ca_file = r.existing_file(at + ".tls_ca_file", false);
        if (url.tls && s.tls_ca_file.empty())
            r.fail(at + ".tls_ca_file", "is required for icaps:// (the CA that issued the service's certificate)");
        if (!url.tls && !s.tls_ca_file.empty())
            r.fail(at + ".tls_ca_file", "is only for icaps:// URLs (this one is icap://, in the clear)");
        s.connect_timeout = millis(r, at + ".connect_timeout_ms", s.connect_timeout);
        s.io_timeout = millis(r, at + ".io_timeout_ms", s.io_timeout);
        s.transaction_timeout = millis(r, at + ".transaction_timeout_ms", s.transaction_timeout);
        s.retry_interval = millis(r, at + ".retry_interval_ms", s.retry_interval);
        s.max_connections = static_cast<unsigned>(r.integer(at + ".max_connections", s.max_connections, 1, 1024));
        s.send_bodiless = r.boolean(at + ".send_bodiless", s.send_bodiless);
        c.icap.push_back(std::move(s));
    }
    if (!c.icap.empty() && !c.inspection.enabled)
        r.fail("icap", "ICAP services are configured but [inspection] enabled = false: nothing would be sent to them");
    std::sort(c.icap.begin(), c.icap.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
}

SmtpSection::TlsPolicy tls_policy(const Reader& r, const std::string& key, const std::string& value) {
    if (value == "strict") return SmtpSection::TlsPolicy::strict;
    if (value == "opportunistic") return SmtpSection::TlsPolicy::opportunistic;
    r.fail(key, "must be \"strict\" or \"opportunistic\" (is '" + value + "')");
}

void load_smtp(const Reader& r, NodeConfig& c) {
    auto& m = c.smtp;
    const std::string upstream = r.string("smtp.upstream", "");
    if (!upstream.empty()) {
        try {
            const Endpoint ep = settings::parse_endpoint(upstream);
            m.upstream_host = ep.host;
            m.upstream_port = ep.port;
        } catch (const std::invalid_argument& e) {
            r.fail("smtp.upstream", e.what());
        }
    }
    if (!m.listen.empty() && m.upstream_host.empty())
        r.fail("smtp.upstream", "is required with listen.smtp: the mail server the node relays to (\"host:port\")");
    if (const auto* ports = r.node("smtp.transparent_ports")) {
        const auto* a = ports->as_array();
        if (a == nullptr) r.fail("smtp.transparent_ports", "must be a list of port numbers");
        m.transparent_ports.clear();
        for (const auto& v : *a) {
            const auto p = v.value_exact<std::int64_t>();
            if (!p || *p < 1 || *p > 65535) r.fail("smtp.transparent_ports", "must hold port numbers 1-65535");
            m.transparent_ports.push_back(static_cast<std::uint16_t>(*p));
        }
    }
    m.tls = tls_policy(r, "smtp.tls", r.string("smtp.tls", "strict"));
    if (const auto* domains = r.node("smtp.tls_domains")) {
        const auto* t = domains->as_table();
        if (t == nullptr) r.fail("smtp.tls_domains", "must be a table of \"domain\" = \"strict\" | \"opportunistic\"");
        for (const auto& [k, v] : *t) {
            const std::string key = "smtp.tls_domains." + std::string(k.str());
            const auto value = v.value_exact<std::string>();
            if (!value) r.fail(key, "must be \"strict\" or \"opportunistic\"");
            const std::string name = normalise_name(std::string(k.str()));
            if (!plausible_dns_name(name) || name.front() == '*')
                r.fail(key, "is not a domain name (write \"example.net\": it covers the names under it too)");
            m.tls_domains[name] = tls_policy(r, key, *value);
        }
    }
    const std::string no_starttls = r.string("smtp.no_starttls", "refuse");
    if (no_starttls == "plaintext") m.no_starttls_plaintext = true;
    else if (no_starttls != "refuse")
        r.fail("smtp.no_starttls", "must be \"refuse\" or \"plaintext\" (is '" + no_starttls + "')");
    m.max_message_bytes = static_cast<std::uint64_t>(
        r.integer("smtp.max_message_bytes", static_cast<std::int64_t>(m.max_message_bytes), 1024, 1ll << 30));
    m.max_line_bytes = static_cast<std::size_t>(
        r.integer("smtp.max_line_bytes", static_cast<std::int64_t>(m.max_line_bytes), 512, 64 * 1024));
    m.command_timeout =
        std::chrono::seconds(r.integer("smtp.command_timeout_seconds", m.command_timeout.count(), 1, 3600));
    m.data_timeout = std::chrono::seconds(r.integer("smtp.data_timeout_seconds", m.data_timeout.count(), 1, 7200));
    m.max_mime_parts =
        static_cast<std::size_t>(r.integer("smtp.max_mime_parts", static_cast<std::int64_t>(m.max_mime_parts), 1, 100000));
}

}  // namespace


NodeConfig load_node_config(const std::filesystem::path& file) {
    const toml::table root = Reader::parse_file(file);
    const Reader r(root, file, "proxy-node/README.md");
    r.only_keys("", {"node", "listen", "ca_service", "upstream", "leaf", "limits", "log", "threads", "access", "bypass",
                     "inspection", "icap", "transparent", "smtp"});
    r.only_keys("node", {"name"});
    r.only_keys("listen", {"proxy", "management", "transparent", "smtp"});
    r.only_keys("transparent", {"capture", "no_sni"});
    r.only_keys("smtp", {"upstream", "transparent_ports", "tls", "tls_domains", "no_starttls", "max_message_bytes",
                         "max_line_bytes", "command_timeout_seconds", "data_timeout_seconds", "max_mime_parts"});
    r.only_keys("ca_service", {"url", "server_ca", "certificate", "private_key", "connect_timeout_ms",
                               "request_timeout_ms", "connections", "max_attempts", "retry_base_delay_ms",
                               "health_interval_ms", "renew_identity", "renew_before_seconds"});
    r.only_keys("upstream", {"extra_ca", "system_trust", "hosts", "alpn", "session_cache_entries"});
    r.only_keys("leaf", {"lifetime_seconds", "key_rotation_seconds", "renew_fraction", "cache_entries", "max_names"});
    r.only_keys("limits", {"max_connections", "max_connections_per_client", "request_head_bytes", "relay_buffer_bytes", "request_timeout_ms",
                           "client_hello_timeout_ms", "upstream_connect_timeout_ms", "handshake_timeout_ms",
                           "certificate_timeout_ms", "idle_timeout_seconds", "drain_timeout_seconds"});
    r.only_keys("log", {"connections"});
    r.only_keys("inspection", {"enabled", "eicar", "patterns", "sha256", "max_scan_bytes", "over_limit", "hold_bytes",
                               "stream_types", "non_http", "head_bytes", "websocket_max_message_bytes",
                               "verdict_timeout_ms", "plain_tunnels", "http2"});
    r.only_keys("threads", {"workers"});
    r.only_keys("access", {"allowed_clients", "denied_destinations"});
    r.only_keys("bypass", {"hosts", "host_lists", "client_certificate", "client_certificate_memory_seconds",
                           "learn_rejected_seconds", "learned_entries", "unsupported_tls", "non_tls", "non_tls_ports"});

    NodeConfig c;
    c.source = file;
    c.name = r.string("node.name");
    // The name appears in every log line, in metrics labels and in the leaves' subject:
    // keep it to the characters hsm-setup uses.
    if (c.name.empty() || c.name.size() > 64 ||
        !std::all_of(c.name.begin(), c.name.end(), [](unsigned char ch) {
            return std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.';
        }))
        r.fail("node.name", "must be 1-64 characters of letters, digits, '-', '_' or '.' (is '" + c.name + "')");
    c.proxy_listen = listeners(r, "listen.proxy", true);
    c.management_listen = r.endpoint("listen.management");
    c.transparent_listen = listeners(r, "listen.transparent", false);
    c.smtp.listen = listeners(r, "listen.smtp", false);
    for (const auto& s : c.smtp.listen) {
        auto same = [&](const Endpoint& e) { return e.host == s.host && e.port == s.port; };
        if (std::any_of(c.proxy_listen.begin(), c.proxy_listen.end(), same) ||
            std::any_of(c.transparent_listen.begin(), c.transparent_listen.end(), same) || same(c.management_listen))
            r.fail("listen.smtp", s.host + ":" + std::to_string(s.port) + " is another listener too");
    }
    for (const auto& t : c.transparent_listen) {
        for (const auto& p : c.proxy_listen)
            if (p.host == t.host && p.port == t.port)
                r.fail("listen.transparent", t.host + ":" + std::to_string(t.port) + " is listen.proxy too");
        if (c.management_listen.host == t.host && c.management_listen.port == t.port)
            r.fail("listen.transparent", t.host + ":" + std::to_string(t.port) + " is listen.management too");
    }
    {
        const std::string capture = r.string("transparent.capture", "redirect");
        if (capture == "redirect") c.transparent.capture = TransparentSection::Capture::redirect;
        else if (capture == "tproxy") c.transparent.capture = TransparentSection::Capture::tproxy;
        else r.fail("transparent.capture", "must be \"redirect\" or \"tproxy\" (is '" + capture + "')");
        c.transparent.no_sni_tunnel = rule(r, "transparent.no_sni", bypass::Rule::refuse) == bypass::Rule::tunnel;
    }

    load_smtp(r, c);

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
    cs.renew_identity = r.boolean("ca_service.renew_identity", cs.renew_identity);
    cs.renew_before = std::chrono::seconds(r.integer("ca_service.renew_before_seconds", 0, 0, 90 * 86400));

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
    lim.max_connections_per_client = static_cast<std::size_t>(r.integer(
        "limits.max_connections_per_client", static_cast<std::int64_t>(lim.max_connections_per_client), 1, kMaxConnections));
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

    c.allowed_clients = allowed_clients(r);
    // An empty list is allowed: the operator's explicit choice to let clients reach anything.
    c.denied_destinations = networks_at(r, "access.denied_destinations", access::default_denied_destinations());
    c.bypass = bypass_rules(r);
    load_inspection(r, c);
    load_icap(r, root, c);

    c.connection_log = r.string("log.connections", "-");
    if (c.connection_log == "-") c.connection_log.clear();
    c.worker_threads = static_cast<unsigned>(r.integer("threads.workers", 0, 0, kMaxThreads));
    return c;
}

}  // namespace proxy
