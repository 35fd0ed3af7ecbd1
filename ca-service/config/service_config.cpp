#include "config/service_config.hpp"

#include "settings/toml_reader.hpp"

#include <algorithm>
#include <map>
#include <sstream>
#include <stdexcept>

namespace ca {

namespace {

constexpr std::int64_t kMaxIoThreads = 256;
constexpr std::int64_t kMaxConnections = 100'000;
constexpr std::int64_t kMaxLifetimeCeiling = 30LL * 24 * 3600;

pkcs11::Uri uri(const settings::TomlReader& r, const std::string& key) {
    try {
        return pkcs11::Uri::parse(r.string(key));
    } catch (const std::invalid_argument& e) {
        r.fail(key, e.what());
    }
}

}  // namespace

ServiceConfig load_service_config(const std::filesystem::path& file) {
    const toml::table root = settings::TomlReader::parse_file(file);
    const settings::TomlReader r(root, file);
    r.only_keys("", {"listen", "tls", "hsm", "ca", "policy", "rate_limit", "audit", "state", "server", "front",
                     "node_identity"});
    r.only_keys("node_identity", {"ca_certificate", "ca_key", "lifetime_seconds", "renew", "renewals_per_hour",
                                  "renewal_burst"});
    r.only_keys("front", {"user"});
    r.only_keys("listen", {"address"});
    r.only_keys("tls", {"certificate", "private_key", "client_ca"});
    r.only_keys("hsm", {"module", "token", "pin_file", "pin_env", "issuing_key", "audit_key", "softhsm2_conf",
                        "max_concurrent_operations", "provider_module", "provider_quirks",
                        "reinitialize_on_reconnect"});
    r.only_keys("ca", {"issuing_certificate", "root_certificate", "audit_certificate"});
    r.only_keys("policy", {"max_lifetime_seconds", "default_lifetime_seconds", "backdate_seconds", "max_names",
                           "allow_wildcards", "allow_ip_addresses", "allowed_names", "denied_names",
                           "public_suffix_list"});
    r.only_keys("rate_limit", {"per_node_per_second", "burst"});
    r.only_keys("audit", {"directory", "checkpoint_every", "checkpoint_interval_seconds"});
    r.only_keys("state", {"directory"});
    if (r.node("server.worker_threads"))
        r.fail("server.worker_threads",
               "no longer used: the listener is asynchronous; set server.io_threads (0 = two per core) and "
               "server.max_connections instead");
    r.only_keys("server", {"io_threads", "max_connections", "read_timeout_seconds", "write_timeout_seconds",
                           "keep_alive_timeout_seconds", "keep_alive_max_requests"});

    ServiceConfig c;
    c.source = file;
    const auto listen = r.endpoint("listen.address");
    c.listen.host = listen.host;
    c.listen.port = listen.port;

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
    c.hsm.issuing_key = uri(r, "hsm.issuing_key");
    c.hsm.audit_key = uri(r, "hsm.audit_key");
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
    c.front.user = r.string("front.user", c.front.user);
    if (c.front.user.empty() || c.front.user == "root")
        r.fail("front.user", "name an unprivileged user for the front (default nobody), never root");
    if (auto list = r.path("policy.public_suffix_list", false); !list.empty()) c.policy.public_suffix_list = list;

    c.rate_limit.per_node_per_second = r.number("rate_limit.per_node_per_second", 500, 0.001, 1e6);
    c.rate_limit.burst = r.number("rate_limit.burst", 1000, 1, 1e7);

    c.audit.directory = r.path("audit.directory");
    c.audit.checkpoint_every = static_cast<std::size_t>(r.integer("audit.checkpoint_every", 1000, 1, 10'000'000));
    c.audit.checkpoint_interval = std::chrono::seconds(r.integer("audit.checkpoint_interval_seconds", 10, 1, 86400));

    c.state_directory = r.path("state.directory");

    c.server.io_threads = static_cast<unsigned>(r.integer("server.io_threads", 0, 0, kMaxIoThreads));
    c.server.max_connections =
        static_cast<std::size_t>(r.integer("server.max_connections", 1024, 1, kMaxConnections));
    c.server.read_timeout = std::chrono::seconds(r.integer("server.read_timeout_seconds", 5, 1, 300));
    c.server.write_timeout = std::chrono::seconds(r.integer("server.write_timeout_seconds", 5, 1, 300));
    c.server.keep_alive_timeout = std::chrono::seconds(r.integer("server.keep_alive_timeout_seconds", 30, 1, 3600));
    c.server.keep_alive_max_requests =
        static_cast<std::size_t>(r.integer("server.keep_alive_max_requests", 100000, 1, 100'000'000));

    if (r.node("node_identity")) {
        auto& n = c.node_identity;
        n.enabled = true;
        n.ca_certificate = r.existing_file("node_identity.ca_certificate");
        n.ca_key = uri(r, "node_identity.ca_key");
        if (n.ca_key.token != c.hsm.token.token_label)
            r.fail("node_identity.ca_key", "names token '" + n.ca_key.token + "' but hsm.token is '" +
                                               c.hsm.token.token_label + "'");
        n.lifetime = std::chrono::seconds(r.integer("node_identity.lifetime_seconds", 86400, 600, 90 * 86400));
        n.renew = r.boolean("node_identity.renew", true);
        n.renewals_per_hour = r.number("node_identity.renewals_per_hour", 1, 0.01, 3600);
        n.renewal_burst = r.number("node_identity.renewal_burst", 5, 1, 1000);
    }
    return c;
}

}  // namespace ca
