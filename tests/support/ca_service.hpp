#pragma once
// A real ca-service process for integration tests, with its own port and state, started
// against a TestCa; plus a curl-based node client.

#include "support/process.hpp"
#include "support/test_ca.hpp"

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace testing_support {

struct ServiceOptions {
    std::string policy_extra;      // extra lines for [policy]
    std::string rate_limit = "per_node_per_second = 1000\nburst = 1000\n";
    std::string hsm_extra;         // extra lines for [hsm]
    std::string server_extra;      // lines for [server]
    std::string module;            // empty: SoftHSM
    std::map<std::string, std::string> env;
    std::size_t checkpoint_every = 1000;
    bool node_identity = true;          // write the [node_identity] section hsm-setup writes
    std::string node_identity_extra;    // extra lines for it (renew = false, ...)
    int node_identity_lifetime = 3600;  // seconds of a renewed identity
    std::vector<std::string> launcher;  // argv before the binary's, e.g. {"prlimit", "--nofile=100:100", "--"}
    std::string netns;                  // a network namespace to run it in (its /healthz is asked there too)
};

class CaService {
public:
    // Writes DIR/config.toml and starts the service on a free loopback port; waits until
    // /healthz answers (throws with the service log if it does not).
    CaService(const TestCa& ca, std::filesystem::path work_dir, ServiceOptions options = {});
    ~CaService();

    void start();
    void stop();               // SIGTERM and wait
    void kill9();              // SIGKILL to the supervisor and its roles, no cleanup
    bool running();
    int pid() const;           // the supervisor
    // The front's or the signer's pid ("front", "signer"): a child of the supervisor; -1
    // while there is none (waits up to 10 s for one to appear).
    int role_pid(const std::string& role) const;

    std::uint16_t port() const { return port_; }
    std::string url(const std::string& path) const;
    const std::filesystem::path& work_dir() const { return work_; }
    std::filesystem::path audit_dir() const { return work_ / "audit"; }
    std::filesystem::path config_file() const { return work_ / "config.toml"; }
    std::string log() const;

private:
    const TestCa& ca_;
    std::filesystem::path work_;
    ServiceOptions options_;
    std::uint16_t port_;
    std::unique_ptr<Child> child_;
};

struct HttpReply {
    int status = 0;           // 0 when the TLS connection itself failed
    std::string body;
    std::string headers;
    std::string curl_error;   // curl's message when status is 0
};

// curl with a client identity (cert+key; empty for none), trusting the service CA; `via`:
// an argv prefix for curl (ip netns exec NS).
HttpReply curl_request(const TestCa& ca, const std::string& url, const std::string& cert, const std::string& key,
                       const std::string& method = "GET", const std::string& body = "",
                       const std::string& content_type = "application/json", const std::vector<std::string>& via = {});

// A fresh EC P-256 public key, base64 DER SPKI, as a node would send it.
std::string new_public_key_b64();
std::string leaf_request_json(const std::vector<std::string>& names, const std::string& public_key_b64,
                              int lifetime_seconds = 0);

}  // namespace testing_support
