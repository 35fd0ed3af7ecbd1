// Horizontal scale: three proxy nodes with their own identities (one `hsm-setup --nodes 3`)
// against one ca-service at the same time. Revoking one node's identity mid-run stops only
// that node's new issuance; the others carry on, and the revoked node keeps serving what it
// already holds. Every certificate and log line names its node.

#include "proxy_harness.hpp"
#include "support/origin_pki.hpp"
#include "support/origin_server.hpp"

#include "ossl/pem.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <openssl/x509.h>

#include <array>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

using namespace testing_support;
using Catch::Matchers::ContainsSubstring;
using Json = nlohmann::json;

namespace {

constexpr int kNodes = 3;
const std::string kDomain = "scale.test.example";

std::string host_for(int node, int k) { return "n" + std::to_string(node) + "-" + std::to_string(k) + "." + kDomain; }

struct Outcome {
    int node = 0;
    std::string host;
    bool fresh = false;  // a name this node had not asked for before
    std::chrono::steady_clock::time_point started;
    int status = 0;
    std::string output;
    double seconds = 0;
};

// The subject of the leaf a node presents for `host`, as /OU=…/CN=….
std::string forged_subject(const ProxyNode& proxy, const std::filesystem::path& root, const std::string& host,
                           std::uint16_t origin_port) {
    auto r = sh("echo | openssl s_client -proxy 127.0.0.1:" + std::to_string(proxy.port()) + " -connect " + host + ":" +
                std::to_string(origin_port) + " -servername " + host + " -CAfile " + root.string() +
                " -verify_return_error 2>&1");
    auto b = r.output.find("-----BEGIN CERTIFICATE-----");
    if (r.exit_code != 0 || b == std::string::npos) return "openssl s_client failed: " + r.output;
    auto e = r.output.find("-----END CERTIFICATE-----", b);
    auto cert = ossl::certificate_from_pem(r.output.substr(b, e + 25 - b) + "\n");
    char subject[256];
    X509_NAME_oneline(X509_get_subject_name(cert.get()), subject, sizeof subject);
    return subject;
}

}  // namespace

TEST_CASE("three nodes serve concurrently; revoking one stops only its new issuance", "[proxy][scale]") {
    const TestCa ca = TestCa::create({"--nodes", std::to_string(kNodes)});
    const auto root = ca.dir / "pki/root-ca.pem";
    auto work = make_temp_dir("splitca-proxy-scale");

    OriginPki pki;
    const OriginCert wildcard = pki.issue(valid_for({"*." + kDomain}));
    OriginServer origin(wildcard, {}, OriginOptions{2, "", false});
    pki.write_root(work / "origin-root.pem");

    CaService service(ca, work / "ca");
    std::vector<std::unique_ptr<ProxyNode>> nodes;
    for (int n = 1; n <= kNodes; ++n) {
        ProxyOptions o;
        o.node = "node-" + std::to_string(n);
        for (int k = 0; k < 200; ++k) o.hosts[host_for(n, k)] = "127.0.0.1";
        o.leaf_extra = "max_names = 1\n";  // one name per leaf: every new host is a new issuance
        nodes.push_back(std::make_unique<ProxyNode>(ca, service.port(), work / o.node, work / "origin-root.pem", o));
    }
    auto url = [&](const std::string& host) { return "https://" + host + ":" + std::to_string(origin.port()) + "/"; };

    // Each node's client asks for fresh names in a loop and, from time to time, for the first
    // name again (cached on that node).
    std::mutex mu;
    std::vector<Outcome> outcomes;
    std::atomic<bool> stop{false};
    std::array<std::atomic<int>, kNodes + 1> progress{};  // rounds done, per node
    std::vector<std::thread> clients;
    for (int n = 1; n <= kNodes; ++n) {
        clients.emplace_back([&, n] {
            for (int k = 0; k < 200 && !stop; ++k) {
                for (bool fresh : {true, false}) {
                    Outcome o{n, fresh ? host_for(n, k) : host_for(n, 0), fresh, std::chrono::steady_clock::now(), 0, ""};
                    if (!fresh && k == 0) continue;
                    auto r = curl_via(*nodes[n - 1], root, url(o.host), {"--max-time", "20"});
                    o.status = r.status;
                    o.output = r.output;
                    o.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - o.started).count();
                    std::lock_guard lock(mu);
                    outcomes.push_back(std::move(o));
                }
                ++progress[static_cast<std::size_t>(n)];
            }
        });
    }
    // Every node `rounds` further than `from` (node-2's refusals come fast, so a total would
    // let it run ahead while the others had barely moved).
    auto wait_progress = [&](const std::array<int, kNodes + 1>& from, int rounds) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
        auto done = [&] {
            for (int n = 1; n <= kNodes; ++n)
                if (progress[static_cast<std::size_t>(n)] < from[static_cast<std::size_t>(n)] + rounds) return false;
            return true;
        };
        while (!done() && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        return done();
    };
    auto snapshot = [&] {
        std::array<int, kNodes + 1> at{};
        for (int n = 1; n <= kNodes; ++n) at[static_cast<std::size_t>(n)] = progress[static_cast<std::size_t>(n)];
        return at;
    };

    REQUIRE(wait_progress(snapshot(), 5));
    const auto admin_cert = (ca.dir / "admin/admin.pem").string();
    const auto admin_key = (ca.dir / "admin/admin.key").string();
    auto revoke = curl_request(ca, service.url("/v1/admin/revoke"), admin_cert, admin_key, "POST", R"({"node":"node-2"})");
    const auto revoked_at = std::chrono::steady_clock::now();
    REQUIRE(revoke.status == 200);
    const bool kept_going = wait_progress(snapshot(), 5);
    stop = true;
    for (auto& t : clients) t.join();
    if (!kept_going) {
        // Say which node stalled and what its last requests saw.
        std::string why;
        for (int n = 1; n <= kNodes; ++n) why += "node-" + std::to_string(n) + ": " +
                                                 std::to_string(progress[static_cast<std::size_t>(n)]) + " rounds\n";
        for (const auto& o : outcomes)
            if (o.started > revoked_at)
                why += "node-" + std::to_string(o.node) + " " + o.host + " " + std::to_string(o.status) + " after " +
                       std::to_string(o.seconds) + " s: " + o.output + "\n";
        for (const auto& node : nodes) why += node->log();
        FAIL_CHECK(why);
    }
    REQUIRE(kept_going);

    // Per node: fresh names before/after the revocation, and cached names after it.
    struct Tally { int fresh_ok_before = 0, fresh_ok_after = 0, fresh_failed_after = 0, cached_ok_after = 0, failures = 0; };
    std::map<int, Tally> tally;
    std::string failures;
    for (const auto& o : outcomes) {
        auto& t = tally[o.node];
        const bool after = o.started > revoked_at;
        const bool ok = o.status == 200;
        if (!ok && !(o.node == 2 && o.fresh)) {
            ++t.failures;
            failures += "node-" + std::to_string(o.node) + " " + o.host + ": " + o.output + "\n";
        }
        if (o.fresh && ok && !after) ++t.fresh_ok_before;
        if (o.fresh && ok && after) ++t.fresh_ok_after;
        if (o.fresh && !ok && after) ++t.fresh_failed_after;
        if (!o.fresh && ok && after) ++t.cached_ok_after;
    }
    INFO(failures);
    for (int n : {1, 3}) {
        INFO("node-" << n);
        CHECK(tally[n].failures == 0);
        CHECK(tally[n].fresh_ok_before >= 5);
        CHECK(tally[n].fresh_ok_after >= 3);  // carried on after node-2 was revoked
        CHECK(tally[n].cached_ok_after >= 3);
    }
    // node-2: everything before the revocation worked; after it, no fresh name was issued
    // (one request may have been in flight across the revocation), cached names still work.
    CHECK(tally[2].failures == 0);
    CHECK(tally[2].fresh_ok_before >= 5);
    CHECK(tally[2].fresh_ok_after <= 1);
    CHECK(tally[2].fresh_failed_after >= 3);
    CHECK(tally[2].cached_ok_after >= 3);

    // The revoked node says why in its log; the others never saw a refusal.
    bool refused_logged = false;
    for (const auto& rec : nodes[1]->records()) {
        CHECK(rec.value("node", "") == "node-2");
        if (rec.value("reason", "") == "certificate_refused" &&
            rec.value("detail", "").find("node_revoked") != std::string::npos) {
            refused_logged = true;
            CHECK(rec.value("leaf", "?") == "");  // no certificate was obtained, none came from the cache
        }
    }
    INFO(nodes[1]->log());
    CHECK(refused_logged);
    for (int n : {1, 3})
        for (const auto& rec : nodes[n - 1]->records()) {
            CHECK(rec.value("node", "") == "node-" + std::to_string(n));
            CHECK(rec.value("decision", "") == "intercepted");
        }

    // Each node's certificates name it; each node's metrics and health say who it is.
    for (int n = 1; n <= kNodes; ++n) {
        CHECK(forged_subject(*nodes[n - 1], root, host_for(n, 0), origin.port()) ==
              "/OU=node-" + std::to_string(n) + "/CN=" + host_for(n, 0));
        auto metrics = run({"curl", "-s", nodes[n - 1]->mgmt_url("/metrics")});
        CHECK_THAT(metrics.output, ContainsSubstring("proxy_node_info{node=\"node-" + std::to_string(n) + "\"} 1"));
        // The revoked node says so, rather than calling the ca-service down (it answers).
        // The revoked node fails its health check (a load balancer drains it); the others pass.
        auto h = run({"curl", "-s", "-w", "\n%{http_code}", nodes[n - 1]->mgmt_url("/healthz")});
        const auto nl = h.output.rfind('\n');
        auto health = Json::parse(h.output.substr(0, nl), nullptr, false);
        CHECK(h.output.substr(nl + 1) == (n == 2 ? "503" : "200"));
        CHECK(health.value("status", "") == (n == 2 ? "node_revoked" : "ok"));
        CHECK(health.value("ca_service", "") == (n == 2 ? "node_revoked" : "available"));
        CHECK_THAT(metrics.output, ContainsSubstring(std::string("proxy_ca_service_node_revoked ") + (n == 2 ? "1" : "0")));
    }

    // The ca-service saw all three, counted node-2's refused attempts, and lists the revocation.
    auto listed = curl_request(ca, service.url("/v1/admin/nodes"), admin_cert, admin_key);
    REQUIRE(listed.status == 200);
    auto j = Json::parse(listed.body);
    std::map<std::string, Json> by_name;
    for (const auto& n : j["nodes"]) by_name[n["name"]] = n;
    INFO(listed.body);
    for (int n = 1; n <= kNodes; ++n) REQUIRE(by_name.count("node-" + std::to_string(n)) == 1);
    CHECK(by_name["node-1"]["issued"].get<int>() >= 8);
    CHECK(by_name["node-3"]["issued"].get<int>() >= 8);
    CHECK(by_name["node-2"]["denied"].get<int>() >= 3);  // its attempts after the revocation, on the record
    CHECK(by_name["node-1"]["denied"].get<int>() == 0);
    CHECK(by_name["node-3"]["denied"].get<int>() == 0);
    CHECK_THAT(j["revoked"].dump(), ContainsSubstring("node-2"));
    std::filesystem::remove_all(work);
}
