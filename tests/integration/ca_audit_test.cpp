// The audit trail of a real ca-service: durable before the answer, verifiable with
// ca-audit against the HSM-signed checkpoints, and tamper-evident.

#include "support/ca_service.hpp"
#include "support/process.hpp"
#include "support/test_ca.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>
#include <nlohmann/json.hpp>

#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>

#include <atomic>
#include <fstream>
#include <mutex>
#include <thread>

using namespace testing_support;
using Catch::Matchers::ContainsSubstring;
using Json = nlohmann::json;

namespace {

const std::filesystem::path kP11KitClient = SPLITCA_P11KIT_CLIENT;

RunResult audit_verify(const TestCa& ca, const std::filesystem::path& dir) {
    return run({(kBinDir / "ca-audit").string(), "verify", dir.string(), "--cert", (ca.dir / "pki/audit.pem").string()});
}

HttpReply issue(const TestCa& ca, const CaService& svc, const std::string& name, const std::string& key) {
    return curl_request(ca, svc.url("/v1/leaf"), (ca.dir / "nodes/node-1/node.pem").string(),
                        (ca.dir / "nodes/node-1/node.key").string(), "POST", leaf_request_json({name}, key));
}

std::vector<std::string> log_lines(const std::filesystem::path& file) {
    std::ifstream in(file);
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}

void write_lines(const std::filesystem::path& file, const std::vector<std::string>& lines) {
    std::ofstream out(file, std::ios::trunc);
    for (const auto& l : lines) out << l << "\n";
}

std::filesystem::path first_log(const std::filesystem::path& dir) { return dir / "audit-000001.jsonl"; }

}  // namespace

TEST_CASE("every decision is audited and ca-audit catches tampering", "[ca-service][audit][invariant4]") {
    const auto& ca = TestCa::shared();
    ServiceOptions opts;
    opts.checkpoint_every = 5;
    auto work = make_temp_dir("splitca-audit");
    {
        CaService svc(ca, work, opts);
        const auto key = new_public_key_b64();
        for (int i = 0; i < 12; ++i) REQUIRE(issue(ca, svc, "a" + std::to_string(i) + ".example.com", key).status == 200);
        REQUIRE(issue(ca, svc, "*.com", key).status == 400);  // a denial is a decision too
        svc.stop();
    }
    auto ok = audit_verify(ca, work / "audit");
    INFO(ok.output);
    REQUIRE(ok.exit_code == 0);
    auto shown = run({(kBinDir / "ca-audit").string(), "show", (work / "audit").string(), "--name", "*.com"});
    CHECK_THAT(shown.output, ContainsSubstring("\"denied\""));
    CHECK_THAT(shown.output, ContainsSubstring("public_suffix"));

    const auto original = log_lines(first_log(work / "audit"));
    REQUIRE(original.size() > 10);
    auto tampered = [&](const std::function<void(std::vector<std::string>&)>& edit) {
        auto lines = original;
        edit(lines);
        write_lines(first_log(work / "audit"), lines);
        auto r = audit_verify(ca, work / "audit");
        write_lines(first_log(work / "audit"), original);
        return r;
    };
    SECTION("a flipped byte") {
        auto r = tampered([](auto& l) {
            auto& line = l[4];
            auto pos = line.find("example.com");
            line[pos] = line[pos] == 'e' ? 'f' : 'e';
        });
        CHECK(r.exit_code == 1);
        CHECK_THAT(r.output, ContainsSubstring("line 5"));
    }
    SECTION("a deleted line") {
        auto r = tampered([](auto& l) { l.erase(l.begin() + 3); });
        CHECK(r.exit_code == 1);
        CHECK_THAT(r.output, ContainsSubstring("deleted"));
    }
    SECTION("a swapped pair") {
        auto r = tampered([](auto& l) { std::swap(l[2], l[3]); });
        CHECK(r.exit_code == 1);
        CHECK_THAT(r.output, ContainsSubstring("line 3"));
    }
    SECTION("a truncated tail") {
        auto r = tampered([](auto& l) { l.resize(l.size() / 2); });
        CHECK(r.exit_code == 1);
        CHECK_THAT(r.output, ContainsSubstring("truncated"));
    }
    SECTION("the wrong audit certificate") {
        auto r = run({(kBinDir / "ca-audit").string(), "verify", (work / "audit").string(), "--cert",
                      (ca.dir / "pki/root-ca.pem").string()});
        CHECK(r.exit_code == 1);
        CHECK_THAT(r.output, ContainsSubstring("not by the audit certificate's key"));
    }
    std::filesystem::remove_all(work);
}

TEST_CASE("a restart continues the same audit chain", "[ca-service][audit]") {
    const auto& ca = TestCa::shared();
    auto work = make_temp_dir("splitca-restart");
    CaService svc(ca, work);
    const auto key = new_public_key_b64();
    REQUIRE(issue(ca, svc, "before.example.com", key).status == 200);
    svc.stop();
    svc.start();
    auto after = issue(ca, svc, "after.example.com", key);
    REQUIRE(after.status == 200);
    svc.stop();
    auto r = audit_verify(ca, work / "audit");
    INFO(r.output);
    CHECK(r.exit_code == 0);
    auto text = read_file(first_log(work / "audit"));
    CHECK(text.find("before.example.com") < text.find("after.example.com"));
    CHECK(Json::parse(after.body)["audit_seq"].get<std::uint64_t>() > 2);
    std::filesystem::remove_all(work);
}

TEST_CASE("kill -9 under load loses no record of a certificate a client received", "[ca-service][audit][invariant4]") {
    const auto& ca = TestCa::shared();
    auto work = make_temp_dir("splitca-kill9");
    CaService svc(ca, work);
    const auto key = new_public_key_b64();
    std::mutex mu;
    std::vector<std::string> serials;
    std::atomic<bool> stop{false};
    std::vector<std::thread> clients;
    for (int t = 0; t < 4; ++t) {
        clients.emplace_back([&, t] {
            for (int i = 0; !stop; ++i) {
                auto r = issue(ca, svc, "k" + std::to_string(t) + "-" + std::to_string(i) + ".example.com", key);
                if (r.status == 200) {
                    std::lock_guard lock(mu);
                    serials.push_back(Json::parse(r.body)["serial"]);
                } else if (r.status == 0) {
                    break;  // the service is gone
                }
            }
        });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    svc.kill9();
    stop = true;
    for (auto& c : clients) c.join();
    REQUIRE(serials.size() > 10);
    std::string all;
    for (const auto& entry : std::filesystem::directory_iterator(work / "audit"))
        if (entry.path().extension() == ".jsonl") all += read_file(entry.path());
    std::size_t missing = 0;
    for (const auto& s : serials)
        if (all.find("\"" + s + "\"") == std::string::npos) ++missing;
    CHECK(missing == 0);
    auto r = audit_verify(ca, work / "audit");
    INFO(r.output);
    CHECK(r.exit_code == 0);
    std::filesystem::remove_all(work);
}

TEST_CASE("while the HSM is gone requests get 503 and the service recovers by itself", "[ca-service][hsm]") {
    const auto& ca = TestCa::shared();
    auto work = make_temp_dir("splitca-hsm-outage");
    const auto socket = work / "hsm.sock";
    const std::map<std::string, std::string> hsm_env = {{"SOFTHSM2_CONF", ca.softhsm_conf().string()}};
    // A network HSM stand-in: SoftHSM behind p11-kit's remoting server, reached through
    // p11-kit-client. Stopping the server takes the HSM away from the ca-service.
    auto start_hsm = [&] {
        std::filesystem::remove(socket);
        auto hsm = std::make_unique<Child>(std::vector<std::string>{"p11-kit", "server", "-f", "--provider",
                                                                   kSoftHsmModule.string(), "-n", socket.string(),
                                                                   "pkcs11:token=splitca-issuing"},
                                           work / "hsm.log", hsm_env);
        // Ready when it accepts a connection, not merely when the socket file exists.
        for (int i = 0; i < 250; ++i) {
            int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            sockaddr_un addr{};
            addr.sun_family = AF_UNIX;
            std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", socket.c_str());
            const bool up = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
            ::close(fd);
            if (up) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return hsm;
    };
    auto hsm = start_hsm();
    REQUIRE(std::filesystem::exists(socket));
    ServiceOptions opts;
    opts.module = kP11KitClient.string();
    opts.hsm_extra = "reinitialize_on_reconnect = true\n";
    opts.env = {{"P11_KIT_SERVER_ADDRESS", "unix:path=" + socket.string()}};
    CaService svc(ca, work / "svc", opts);
    const auto key = new_public_key_b64();
    REQUIRE(issue(ca, svc, "up.example.com", key).status == 200);

    hsm->kill_group(SIGKILL);
    hsm->wait(std::chrono::seconds(5));
    hsm.reset();
    auto down = issue(ca, svc, "down.example.com", key);
    CHECK(down.status == 503);
    CHECK_THAT(down.body, ContainsSubstring("hsm_unavailable"));
    CHECK_THAT(down.headers, ContainsSubstring("Retry-After: "));
    auto health = curl_request(ca, svc.url("/healthz"), (ca.dir / "nodes/node-1/node.pem").string(),
                               (ca.dir / "nodes/node-1/node.key").string());
    CHECK(health.status == 503);
    CHECK_THAT(health.body, ContainsSubstring("splitca-issuing"));

    hsm = start_hsm();
    int status = 0;
    for (int i = 0; i < 40 && status != 200; ++i) {
        status = issue(ca, svc, "back.example.com", key).status;
        if (status != 200) std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    CHECK(status == 200);
    CHECK(curl_request(ca, svc.url("/healthz"), (ca.dir / "nodes/node-1/node.pem").string(),
                       (ca.dir / "nodes/node-1/node.key").string())
              .status == 200);
    CHECK(svc.running());
    svc.stop();
    hsm->kill_group(SIGKILL);
    std::filesystem::remove_all(work);
}

TEST_CASE("if the audit log cannot be written nothing is issued", "[ca-service][audit][invariant4]") {
    const auto& ca = TestCa::shared();
    auto work = make_temp_dir("splitca-audit-full");
    // A tiny filesystem for the audit log: it fills up after a few dozen records.
    std::filesystem::create_directories(work / "audit");
    auto mounted = sh("mount -t tmpfs -o size=48k splitca-audit-test " + (work / "audit").string() + " 2>&1");
    if (mounted.exit_code != 0) {
        WARN("cannot mount a tmpfs here (" << mounted.output << "); the disk-full case needs root");
        std::filesystem::remove_all(work);
        return;
    }
    struct Unmount {
        std::filesystem::path dir;
        ~Unmount() { sh("umount -l " + dir.string()); }
    } unmount{work / "audit"};
    int issued = 0, refused = 0;
    std::string refusal;
    {
        CaService svc(ca, work);
        const auto key = new_public_key_b64();
        for (int i = 0; i < 400 && refused == 0; ++i) {
            auto r = issue(ca, svc, "fill-" + std::to_string(i) + ".example.com", key);
            if (r.status == 200) {
                ++issued;
            } else {
                ++refused;
                refusal = r.body + r.headers;
            }
        }
        // fail closed from then on, and /healthz says why
        auto again = issue(ca, svc, "after-full.example.com", key);
        CHECK(again.status == 503);
        CHECK_THAT(again.body, !ContainsSubstring("BEGIN CERTIFICATE"));
        auto health = curl_request(ca, svc.url("/healthz"), (ca.dir / "nodes/node-1/node.pem").string(),
                                   (ca.dir / "nodes/node-1/node.key").string());
        CHECK(health.status == 503);
        CHECK_THAT(health.body, ContainsSubstring("\"writable\":false"));
        // An admin action that cannot be recorded does not take effect.
        const std::string admin_cert = (ca.dir / "admin/admin.pem").string(), admin_key = (ca.dir / "admin/admin.key").string();
        auto revoke = curl_request(ca, svc.url("/v1/admin/revoke"), admin_cert, admin_key, "POST", R"({"node":"node-1"})");
        INFO(revoke.body);
        CHECK(revoke.status == 503);
        CHECK_THAT(revoke.body, ContainsSubstring("audit_unavailable"));
        CHECK_THAT(revoke.body, ContainsSubstring("nothing changed"));
        auto nodes = curl_request(ca, svc.url("/v1/admin/nodes"), admin_cert, admin_key);
        CHECK_THAT(nodes.body, ContainsSubstring("\"revoked\":[]"));
        CHECK_FALSE(std::filesystem::exists(work / "state/revoked-nodes"));
        svc.kill9();
    }
    CHECK(issued > 5);
    CHECK(refused == 1);
    CHECK_THAT(refusal, ContainsSubstring("audit_unavailable"));
    CHECK_THAT(refusal, !ContainsSubstring("BEGIN CERTIFICATE"));
    CHECK_THAT(refusal, ContainsSubstring("Retry-After"));
    // everything that was issued is in the log
    std::string all;
    for (const auto& entry : std::filesystem::directory_iterator(work / "audit")) all += read_file(entry.path());
    CHECK(all.find("fill-" + std::to_string(issued - 1) + ".example.com") != std::string::npos);
}
