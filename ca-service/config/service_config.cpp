#include "config/service_config.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <map>
#include <sstream>
#include <stdexcept>

namespace ca {

namespace {

constexpr std::int64_t kMaxWorkerThreads = 1024;
constexpr std::int64_t kMaxLifetimeCeiling = 30LL * 24 * 3600;

class Reader {
public:
    Reader(const toml::table& root, std::filesystem::path file) : root_(root), file_(std::move(file)) {}

    [[noreturn]] void fail(const std::string& key, const std::string& what) const {
        throw std::runtime_error(file_.string() + ": " + key + ": " + what);
    }

    const toml::node* node(const std::string& key) const { return root_.at_path(key).node(); }

    std::string string(const std::string& key, std::optional<std::string> fallback = std::nullopt) const {
        const auto* n = node(key);
        if (n == nullptr) {
            if (fallback) return *fallback;
            fail(key, "is required");
        }
        auto v = n->value<std::string>();
        if (!v) fail(key, "must be a string");
        return *v;
    }

    std::filesystem::path path(const std::string& key, bool required = true) const {
        if (!required && node(key) == nullptr) return {};
        auto p = std::filesystem::path(string(key));
        if (p.empty()) fail(key, "must not be empty");
        return p;
    }

    std::filesystem::path existing_file(const std::string& key) const {
        auto p = path(key);
        std::error_code ec;
        if (!std::filesystem::is_regular_file(p, ec)) fail(key, p.string() + " does not exist or is not a file");
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

    std::vector<std::string> strings(const std::string& key) const {
        const auto* n = node(key);
        std::vector<std::string> out;
        if (n == nullptr) return out;
        const auto* arr = n->as_array();
        if (arr == nullptr) fail(key, "must be an array of strings");
        for (const auto& item : *arr) {
            auto v = item.value<std::string>();
            if (!v) fail(key, "must be an array of strings");
            out.push_back(*v);
        }
        return out;
    }

    pkcs11::Uri uri(const std::string& key) const {
        try {
            return pkcs11::Uri::parse(string(key));
        } catch (const std::invalid_argument& e) {
            fail(key, e.what());
        }
    }

    void reject_unknown(const std::map<std::string, std::vector<std::string>>& schema) const {
        for (const auto& [section, value] : root_) {
            const std::string name(section.str());
            auto it = schema.find(name);
            if (it == schema.end()) fail(name, "unknown section");
            const auto* table = value.as_table();
            if (table == nullptr) fail(name, "must be a table");
            for (const auto& [k, v] : *table) {
                (void)v;
                if (std::find(it->second.begin(), it->second.end(), std::string(k.str())) == it->second.end())
                    fail(name + "." + std::string(k.str()), "unknown key");
            }
        }
    }

private:
    const toml::table& root_;
    std::filesystem::path file_;
};

std::pair<std::string, std::uint16_t> host_port(const Reader& r, const std::string& key) {
    const std::string text = r.string(key);
    std::string host;
    std::string port;
    if (text.starts_with('[')) {
        auto close = text.find("]:");
        if (close == std::string::npos) r.fail(key, "'" + text + "' is not [IPv6]:PORT");
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
    } else {
        auto colon = text.rfind(':');
        if (colon == std::string::npos) r.fail(key, "'" + text + "' is not HOST:PORT");
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
    }
    int p = 0;
    try {
        std::size_t used = 0;
        p = std::stoi(port, &used);
        if (used != port.size()) p = 0;
    } catch (...) {
        p = 0;
    }
    if (host.empty() || p < 1 || p > 65535) r.fail(key, "'" + text + "' is not HOST:PORT with a port 1-65535");
    return {host, static_cast<std::uint16_t>(p)};
}

}  // namespace

ServiceConfig load_service_config(const std::filesystem::path& file) {
    toml::table root;
    try {
        root = toml::parse_file(file.string());
    } catch (const toml::parse_error& e) {
        std::ostringstream where;
        where << e.source().begin;
        throw std::runtime_error(file.string() + ": not valid TOML at " + where.str() + ": " +
                                 std::string(e.description()));
    } catch (const std::exception& e) {
        throw std::runtime_error("cannot read configuration " + file.string() + ": " + e.what());
    }
    Reader r(root, file);
    r.reject_unknown({
        {"listen", {"address"}},
        {"tls", {"certificate", "private_key", "client_ca"}},
        {"hsm", {"module", "token", "pin_file", "pin_env", "issuing_key", "audit_key", "softhsm2_conf",
                 "max_concurrent_operations", "provider_module", "provider_quirks",
                 "reinitialize_on_reconnect"}},
        {"ca", {"issuing_certificate", "root_certificate", "audit_certificate"}},
        {"policy", {"max_lifetime_seconds", "default_lifetime_seconds", "backdate_seconds", "max_names",
                    "allow_wildcards", "allow_ip_addresses", "allowed_names", "denied_names"}},
        {"rate_limit", {"per_node_per_second", "burst"}},
        {"audit", {"directory", "checkpoint_every", "checkpoint_interval_seconds"}},
        {"state", {"directory"}},
        {"server", {"worker_threads", "read_timeout_seconds", "write_timeout_seconds", "keep_alive_timeout_seconds",
                    "keep_alive_max_requests"}},
    });

    ServiceConfig c;
    c.source = file;
    std::tie(c.listen.host, c.listen.port) = host_port(r, "listen.address");

    c.tls.certificate = r.existing_file("tls.certificate");
    c.tls.private_key = r.existing_file("tls.private_key");
    c.tls.client_ca = r.existing_file("tls.client_ca");

    c.hsm.token.module = r.path("hsm.module");
    c.hsm.token.token_label = r.string("hsm.token");
    if (r.node("hsm.pin_file") && r.node("hsm.pin_env")) r.fail("hsm.pin_file", "give pin_file or pin_env, not both");
    if (r.node("hsm.pin_env"))
        c.hsm.token.pin = pkcs11::PinSource{pkcs11::PinSource::Kind::Environment, r.string("hsm.pin_env")};
    else
        c.hsm.token.pin = pkcs11::PinSource{pkcs11::PinSource::Kind::File, r.path("hsm.pin_file").string()};
    c.hsm.token.provider_module = r.path("hsm.provider_module", false);
    c.hsm.token.quirks = r.string("hsm.provider_quirks", c.hsm.token.quirks);
    c.hsm.token.reinitialize_on_reconnect = r.boolean("hsm.reinitialize_on_reconnect", false);
    c.hsm.issuing_key = r.uri("hsm.issuing_key");
    c.hsm.audit_key = r.uri("hsm.audit_key");
    if (c.hsm.issuing_key.token != c.hsm.token.token_label)
        r.fail("hsm.issuing_key", "names token '" + c.hsm.issuing_key.token + "' but hsm.token is '" +
                                      c.hsm.token.token_label + "'");
    if (c.hsm.audit_key.token != c.hsm.token.token_label)
        r.fail("hsm.audit_key", "names token '" + c.hsm.audit_key.token + "' but hsm.token is '" +
                                    c.hsm.token.token_label + "'");
    c.hsm.softhsm2_conf = r.path("hsm.softhsm2_conf", false);
    c.hsm.max_concurrent_operations = static_cast<unsigned>(r.integer("hsm.max_concurrent_operations", 8, 1, 256));

    c.ca.issuing_certificate = r.existing_file("ca.issuing_certificate");
    c.ca.root_certificate = r.existing_file("ca.root_certificate");
    c.ca.audit_certificate = r.path("ca.audit_certificate", false);

    c.policy.max_lifetime = std::chrono::seconds(r.integer("policy.max_lifetime_seconds", 86400, 60, kMaxLifetimeCeiling));
    c.policy.default_lifetime = std::chrono::seconds(
        r.integer("policy.default_lifetime_seconds", c.policy.max_lifetime.count(), 60, kMaxLifetimeCeiling));
    if (c.policy.default_lifetime > c.policy.max_lifetime)
        r.fail("policy.default_lifetime_seconds", "must not exceed policy.max_lifetime_seconds");
    c.policy.backdate = std::chrono::seconds(r.integer("policy.backdate_seconds", 300, 0, 3600));
    c.policy.max_names = static_cast<std::size_t>(r.integer("policy.max_names", 20, 1, 100));
    c.policy.allow_wildcards = r.boolean("policy.allow_wildcards", true);
    c.policy.allow_ip_addresses = r.boolean("policy.allow_ip_addresses", true);
    c.policy.allowed_names = r.strings("policy.allowed_names");
    c.policy.denied_names = r.strings("policy.denied_names");

    c.rate_limit.per_node_per_second = r.number("rate_limit.per_node_per_second", 500, 0.001, 1e6);
    c.rate_limit.burst = r.number("rate_limit.burst", 1000, 1, 1e7);

    c.audit.directory = r.path("audit.directory");
    c.audit.checkpoint_every = static_cast<std::size_t>(r.integer("audit.checkpoint_every", 1000, 1, 10'000'000));
    c.audit.checkpoint_interval = std::chrono::seconds(r.integer("audit.checkpoint_interval_seconds", 10, 1, 86400));

    c.state_directory = r.path("state.directory");

    c.server.worker_threads = static_cast<unsigned>(r.integer("server.worker_threads", 64, 2, kMaxWorkerThreads));
    c.server.read_timeout = std::chrono::seconds(r.integer("server.read_timeout_seconds", 5, 1, 300));
    c.server.write_timeout = std::chrono::seconds(r.integer("server.write_timeout_seconds", 5, 1, 300));
    c.server.keep_alive_timeout = std::chrono::seconds(r.integer("server.keep_alive_timeout_seconds", 30, 1, 3600));
    c.server.keep_alive_max_requests =
        static_cast<std::size_t>(r.integer("server.keep_alive_max_requests", 100000, 1, 100'000'000));
    return c;
}

}  // namespace ca
