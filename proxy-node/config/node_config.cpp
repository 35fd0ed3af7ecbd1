#include "config/node_config.hpp"

#include <toml++/toml.h>

#include <arpa/inet.h>

#include <cctype>
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

class Reader {
public:
    Reader(const toml::table& root, std::filesystem::path file) : root_(root), file_(std::move(file)) {}

    [[noreturn]] void fail(const std::string& key, const std::string& what) const {
        throw std::runtime_error(file_.string() + ": " + key + ": " + what);
    }
    const toml::node* node(const std::string& key) const { return root_.at_path(key).node(); }

    // Every key in every table must be one this version knows.
    void only_keys(const std::string& table, const std::set<std::string>& known) const {
        const toml::table* t = table.empty() ? &root_ : root_.at_path(table).as_table();
        if (t == nullptr) {
            if (node(table) != nullptr) fail(table, "must be a table");
            return;
        }
        for (const auto& [k, v] : *t) {
            std::string key(k.str());
            if (!known.count(key))
                fail(table.empty() ? key : table + "." + key, "unknown key (misspelt? see proxy-node/README.md)");
        }
    }

    std::string string(const std::string& key, std::optional<std::string> fallback = std::nullopt) const {
        const auto* n = node(key);
        if (n == nullptr) {
            if (fallback) return *fallback;
            fail(key, "is required");
        }
        auto v = n->value_exact<std::string>();
        if (!v) fail(key, "must be a string");
        return *v;
    }
    std::filesystem::path existing_file(const std::string& key, bool required) const {
        if (!required && node(key) == nullptr) return {};
        std::filesystem::path p = string(key);
        std::error_code ec;
        if (p.empty() || !std::filesystem::is_regular_file(p, ec))
            fail(key, "'" + p.string() + "' does not exist or is not a file");
        return p;
    }
    std::int64_t integer(const std::string& key, std::int64_t fallback, std::int64_t min, std::int64_t max) const {
        const auto* n = node(key);
        if (n == nullptr) return fallback;
        auto v = n->value_exact<std::int64_t>();
        if (!v) fail(key, "must be an integer");
        if (*v < min || *v > max)
            fail(key, "must be between " + std::to_string(min) + " and " + std::to_string(max) + " (is " +
                          std::to_string(*v) + ")");
        return *v;
    }
    double number(const std::string& key, double fallback, double min, double max) const {
        const auto* n = node(key);
        if (n == nullptr) return fallback;
        auto v = n->value<double>();
        if (!v) fail(key, "must be a number");
        if (*v < min || *v > max) fail(key, "must be between " + std::to_string(min) + " and " + std::to_string(max));
        return *v;
    }
    bool boolean(const std::string& key, bool fallback) const {
        const auto* n = node(key);
        if (n == nullptr) return fallback;
        auto v = n->value_exact<bool>();
        if (!v) fail(key, "must be true or false");
        return *v;
    }
    std::vector<std::string> strings(const std::string& key, std::vector<std::string> fallback) const {
        const auto* n = node(key);
        if (n == nullptr) return fallback;
        const auto* arr = n->as_array();
        if (arr == nullptr) fail(key, "must be an array of strings");
        std::vector<std::string> out;
        for (const auto& e : *arr) {
            auto v = e.value_exact<std::string>();
            if (!v) fail(key, "must be an array of strings");
            out.push_back(*v);
        }
        return out;
    }
    std::chrono::milliseconds millis(const std::string& key, std::chrono::milliseconds fallback) const {
        return std::chrono::milliseconds(integer(key, fallback.count(), 1, kMaxTimeoutMs));
    }
    Endpoint endpoint(const std::string& key, std::optional<std::string> fallback = std::nullopt) const {
        try {
            return parse_endpoint(string(key, fallback), key);
        } catch (const std::invalid_argument& e) {
            fail(key, e.what());
        }
    }

private:
    const toml::table& root_;
    std::filesystem::path file_;
};

bool is_ip_literal(const std::string& s) {
    unsigned char buf[16];
    return ::inet_pton(AF_INET, s.c_str(), buf) == 1 || ::inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

}  // namespace

Endpoint parse_endpoint(const std::string& text, const std::string& what) {
    std::string host, port;
    if (!text.empty() && text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
            throw std::invalid_argument(what + ": '" + text + "' is not [IPv6]:PORT");
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
    } else {
        auto colon = text.rfind(':');
        if (colon == std::string::npos || colon == 0) throw std::invalid_argument("'" + text + "' is not HOST:PORT");
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
    }
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
        throw std::invalid_argument("'" + text + "' has no valid port");
    int p = std::stoi(port);
    if (p < 1 || p > 65535) throw std::invalid_argument("port in '" + text + "' is out of range 1-65535");
    return {host, static_cast<std::uint16_t>(p)};
}

NodeConfig load_node_config(const std::filesystem::path& file) {
    toml::table root;
    try {
        root = toml::parse_file(file.string());
    } catch (const toml::parse_error& e) {
        std::ostringstream msg;
        msg << file.string() << ":" << e.source().begin.line << ": " << e.description();
        throw std::runtime_error(msg.str());
    }
    Reader r(root, file);
    r.only_keys("", {"node", "listen", "ca_service", "upstream", "leaf", "limits", "log", "threads"});
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
        ca_ep = parse_endpoint(hostport, "ca_service.url");
    } catch (const std::invalid_argument& e) {
        r.fail("ca_service.url", e.what());
    }
    cs.host = ca_ep.host;
    cs.port = ca_ep.port;
    cs.server_ca = r.existing_file("ca_service.server_ca", true);
    cs.certificate = r.existing_file("ca_service.certificate", true);
    cs.private_key = r.existing_file("ca_service.private_key", true);
    cs.connect_timeout = r.millis("ca_service.connect_timeout_ms", cs.connect_timeout);
    cs.request_timeout = r.millis("ca_service.request_timeout_ms", cs.request_timeout);
    cs.connections = static_cast<unsigned>(r.integer("ca_service.connections", cs.connections, 1, 64));
    cs.max_attempts = static_cast<unsigned>(r.integer("ca_service.max_attempts", cs.max_attempts, 1, 10));
    cs.retry_base_delay = r.millis("ca_service.retry_base_delay_ms", cs.retry_base_delay);
    cs.health_interval = r.millis("ca_service.health_interval_ms", cs.health_interval);

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
    lim.request_timeout = r.millis("limits.request_timeout_ms", lim.request_timeout);
    lim.client_hello_timeout = r.millis("limits.client_hello_timeout_ms", lim.client_hello_timeout);
    lim.upstream_connect_timeout = r.millis("limits.upstream_connect_timeout_ms", lim.upstream_connect_timeout);
    lim.handshake_timeout = r.millis("limits.handshake_timeout_ms", lim.handshake_timeout);
    lim.certificate_timeout = r.millis("limits.certificate_timeout_ms", lim.certificate_timeout);
    lim.idle_timeout = std::chrono::seconds(r.integer("limits.idle_timeout_seconds", lim.idle_timeout.count(), 1, 86400));
    lim.drain_timeout =
        std::chrono::seconds(r.integer("limits.drain_timeout_seconds", lim.drain_timeout.count(), 0, 3600));

    c.connection_log = r.string("log.connections", "-");
    if (c.connection_log == "-") c.connection_log.clear();
    c.worker_threads = static_cast<unsigned>(r.integer("threads.workers", 0, 0, kMaxThreads));
    return c;
}

}  // namespace proxy
