// The ca-service's privilege separation, tested from the outside: a harness that speaks the
// socketpair protocol to a real signer as a compromised front would, the confinement of the
// real front as the kernel reports it, and kill -9 of either process under load.

#include "ossl/pem.hpp"
#include "privsep/channel.hpp"
#include "support/ca_service.hpp"
#include "support/process.hpp"
#include "support/test_ca.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>
#include <nlohmann/json.hpp>

#include <openssl/x509v3.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

using namespace testing_support;
using namespace ca::privsep;
using Catch::Matchers::ContainsSubstring;
using Json = nlohmann::json;

extern char** environ;

namespace {

constexpr std::uint32_t kEpoch = 1;

ossl::Bytes der_of(const std::filesystem::path& pem_file) {
    return ossl::to_der(*ossl::load_certificate(pem_file));
}

ossl::Bytes new_public_key() {
    ossl::PKey key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    return ossl::public_key_der(*key);
}

// A real signer (`ca-service --role signer`) with the other end of its channel in the test:
// the test is the front, and a hostile one.
class SignerUnderTest {
public:
    SignerUnderTest(const std::filesystem::path& config, const std::filesystem::path& log) {
        auto [ours, theirs] = make_channel_pair();
        channel_ = std::make_unique<Channel>(ours);
        int ready[2];
        REQUIRE(::pipe2(ready, O_CLOEXEC) == 0);
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
        posix_spawn_file_actions_adddup2(&actions, 1, 2);
        posix_spawn_file_actions_adddup2(&actions, theirs, kChannelFdForTest);
        posix_spawn_file_actions_adddup2(&actions, ready[1], kReadyFdForTest);
        const std::string bin = (kBinDir / "ca-service").string();
        std::vector<std::string> args = {bin, "--role", "signer", "--config", config.string(), "--epoch",
                                         std::to_string(kEpoch)};
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        REQUIRE(posix_spawn(&pid_, bin.c_str(), &actions, nullptr, argv.data(), environ) == 0);
        posix_spawn_file_actions_destroy(&actions);
        ::close(theirs);
        ::close(ready[1]);
        pollfd p{ready[0], POLLIN, 0};
        char byte = 0;
        const bool up = ::poll(&p, 1, 30'000) == 1 && ::read(ready[0], &byte, 1) == 1;
        ::close(ready[0]);
        INFO(read_file(log));
        REQUIRE(up);
        // The unsolicited hello of a new signer.
        auto hello = next();
        REQUIRE(hello);
        REQUIRE(std::holds_alternative<Hello>(hello->body));
        CHECK(hello->epoch == kEpoch);
    }
    ~SignerUnderTest() { stop(); }

    // The exit status (a wait status; 0 for a clean stop), also when stopped before.
    int stop() {
        if (pid_ < 0) return status_;
        ::kill(pid_, SIGTERM);
        ::waitpid(pid_, &status_, 0);
        pid_ = -1;
        return status_;
    }
    bool running() const { return pid_ > 0 && ::kill(pid_, 0) == 0; }

    // The next message within `limit`, or nullopt.
    std::optional<Message> next(std::chrono::milliseconds limit = std::chrono::seconds(10)) {
        pollfd p{channel_->fd(), POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(limit.count())) != 1) return std::nullopt;
        auto r = channel_->receive();
        if (auto* m = std::get_if<Message>(&r)) return std::move(*m);
        return std::nullopt;
    }

    Body ask(Body request, std::uint32_t epoch = kEpoch) {
        const std::uint64_t id = ++last_id_;
        REQUIRE(channel_->send({id, epoch, std::move(request)}));
        for (;;) {
            auto m = next();
            REQUIRE(m);
            if (m->id == id) return std::move(m->body);
        }
    }

    Channel& channel() { return *channel_; }
    std::uint64_t last_id_ = 1000;

private:
    static constexpr int kChannelFdForTest = 3;
    static constexpr int kReadyFdForTest = 4;
    std::unique_ptr<Channel> channel_;
    pid_t pid_ = -1;
    int status_ = -1;
};

std::string refusal_code(const Body& body) {
    if (auto* r = std::get_if<Refused>(&body)) return std::string(protocol::to_string(r->error.code));
    return std::string("(not refused: ") + type_name(body) + ")";
}

std::string audit_show(const std::filesystem::path& dir) {
    return run({(kBinDir / "ca-audit").string(), "show", dir.string()}).output;
}

RunResult audit_verify(const TestCa& ca, const std::filesystem::path& dir) {
    return run({(kBinDir / "ca-audit").string(), "verify", dir.string(), "--cert", (ca.dir / "pki/audit.pem").string()});
}

std::map<std::string, std::string> proc_status(int pid) {
    std::map<std::string, std::string> out;
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(in, line);) {
        const auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        auto value = line.substr(colon + 1);
        value.erase(0, value.find_first_not_of(" \t"));
        out[line.substr(0, colon)] = value;
    }
    return out;
}

std::string first_field(const std::string& s) { return s.substr(0, s.find_first_of(" \t")); }

}  // namespace

TEST_CASE("a compromised front gets from the signer at most what policy allows some node, on the record",
          "[ca-service][privsep]") {
    const auto& ca = TestCa::create({"--nodes", "2"});
    auto work = make_temp_dir("splitca-privsep-harness");
    std::filesystem::path config;
    {
        // The service writes a complete configuration; its own processes stop before the
        // harness takes the signer's place.
        CaService svc(ca, work);
        config = svc.config_file();
        svc.stop();
    }
    SignerUnderTest signer(config, work / "signer.log");
    const auto node1 = der_of(ca.dir / "nodes/node-1/node.pem");
    const auto node2 = der_of(ca.dir / "nodes/node-2/node.pem");
    const auto admin = der_of(ca.dir / "admin/admin.pem");

    SECTION("what it may ask for comes out as a leaf of the fixed profile, within the policy's lifetime") {
        // The message has no field for extensions, a CA flag or key usages: the signer
        // builds the profile itself. A lifetime far above the policy is capped.
        const auto reply = signer.ask(IssueRequest{node1, {{"www.example.com"}, new_public_key(), 29 * 86400}});
        REQUIRE(std::holds_alternative<Issued>(reply));
        const auto& leaf = std::get<Issued>(reply).leaf;
        CHECK(leaf.audit_seq > 0);
        auto cert = ossl::certificate_from_pem(leaf.certificate_pem);
        auto* bc = static_cast<BASIC_CONSTRAINTS*>(X509_get_ext_d2i(cert.get(), NID_basic_constraints, nullptr, nullptr));
        REQUIRE(bc != nullptr);
        CHECK_FALSE(bc->ca);
        BASIC_CONSTRAINTS_free(bc);
        CHECK(X509_get_extended_key_usage(cert.get()) == XKU_SSL_SERVER);
        int days = -1, seconds = -1;
        REQUIRE(ASN1_TIME_diff(&days, &seconds, X509_get0_notBefore(cert.get()), X509_get0_notAfter(cert.get())) == 1);
        CHECK(days * 86400 + seconds <= 86400 + 300);  // policy max (24 h) plus the backdate
    }

    SECTION("names and lifetimes outside policy are refused by the signer and audited") {
        for (const char* name : {"*.com", "co.uk", "bad..name"}) {
            INFO(name);
            const auto reply = signer.ask(IssueRequest{node1, {{name}, new_public_key(), std::nullopt}});
            CHECK(std::holds_alternative<Refused>(reply));
        }
        // A lifetime beyond the protocol's ceiling does not even decode.
        auto wire = encode({77, kEpoch, IssueRequest{node1, {{"a.example.com"}, new_public_key(), 3600}}});
        for (int i = 0; i < 4; ++i) wire[wire.size() - 4 + i] = 0xff;
        REQUIRE(::send(signer.channel().fd(), wire.data(), wire.size(), 0) == static_cast<ssize_t>(wire.size()));
        auto refused = signer.next();
        REQUIRE(refused);
        CHECK(refused->id == 77u);
        CHECK(refusal_code(refused->body) == "malformed_request");
        signer.stop();
        const auto shown = audit_show(work / "audit");
        CHECK_THAT(shown, ContainsSubstring("\"reason\":\"public_suffix\""));
        CHECK_THAT(shown, ContainsSubstring("\"reason\":\"invalid_name\""));
    }

    SECTION("identities are the signer's to verify: forged ones, and roles that do not fit, are refused") {
        // A certificate the service CA never signed, claiming to be the admin.
        const auto forged_dir = work / "forged";
        std::filesystem::create_directories(forged_dir);
        REQUIRE(run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                     "-days", "1", "-subj", "/O=splitca/OU=admins/CN=admin", "-keyout", (forged_dir / "k.pem").string(),
                     "-out", (forged_dir / "c.pem").string()})
                    .exit_code == 0);
        const auto forged = der_of(forged_dir / "c.pem");
        CHECK(refusal_code(signer.ask(RevokeRequest{forged, "node-1"})) == "unauthenticated");
        CHECK(refusal_code(signer.ask(IssueRequest{forged, {{"x.example.com"}, new_public_key(), std::nullopt}})) ==
              "unauthenticated");
        CHECK(refusal_code(signer.ask(NodesRequest{ossl::Bytes{0x30, 0x03, 0x02, 0x01, 0x00}})) == "unauthenticated");
        // A node is no admin; the admin is no node.
        CHECK(refusal_code(signer.ask(RevokeRequest{node1, "node-2"})) == "forbidden");
        CHECK(refusal_code(signer.ask(AuditTailRequest{node1, 10})) == "forbidden");
        CHECK(refusal_code(signer.ask(IssueRequest{admin, {{"x.example.com"}, new_public_key(), std::nullopt}})) ==
              "forbidden");
        // Nothing changed: node-1 still gets certificates.
        CHECK(std::holds_alternative<Issued>(signer.ask(IssueRequest{node1, {{"x.example.com"}, new_public_key(), std::nullopt}})));
    }

    SECTION("a node revoked through the signer is refused by it, and the refusal is on the record") {
        const auto done = signer.ask(RevokeRequest{admin, "node-2"});
        REQUIRE(std::holds_alternative<RevocationDone>(done));
        CHECK(std::get<RevocationDone>(done).changed);
        CHECK(refusal_code(signer.ask(IssueRequest{node2, {{"y.example.com"}, new_public_key(), std::nullopt}})) ==
              "node_revoked");
        CHECK(refusal_code(signer.ask(RevokeRequest{admin, "node2"})) == "not_found");
        signer.stop();
        const auto shown = audit_show(work / "audit");
        CHECK_THAT(shown, ContainsSubstring("node node-2 by admin"));
        CHECK_THAT(shown, ContainsSubstring("\"reason\":\"node_revoked\""));
    }

    SECTION("malformed, oversized, misdirected and stale messages are refused without harm") {
        const std::uint64_t before = signer.last_id_;
        // Garbage after a valid header: refused by id.
        auto garbage = encode({5, kEpoch, HealthRequest{}});
        garbage.insert(garbage.end(), {0xde, 0xad});
        REQUIRE(::send(signer.channel().fd(), garbage.data(), garbage.size(), 0) > 0);
        auto r = signer.next();
        REQUIRE(r);
        CHECK(r->id == 5u);
        CHECK(refusal_code(r->body) == "malformed_request");
        // Over the size limit: dropped whole.
        std::vector<std::uint8_t> huge(kMaxMessageBytes + 1, 0x41);
        REQUIRE(::send(signer.channel().fd(), huge.data(), huge.size(), 0) > 0);
        // A reply type sent as a request.
        CHECK(refusal_code(signer.ask(Hello{"x", {}})) == "malformed_request");
        // Meant for another epoch: no answer at all.
        REQUIRE(signer.channel().send({9999, kEpoch + 1, HealthRequest{}}));
        // Still serving, and the next answer is to the next request, not to the stale one.
        const auto health = signer.ask(HealthRequest{});
        REQUIRE(std::holds_alternative<HealthReport>(health));
        CHECK_THAT(std::get<HealthReport>(health).metrics, ContainsSubstring("splitca_signer_refused_messages_total 3"));
        CHECK_THAT(std::get<HealthReport>(health).metrics, ContainsSubstring("splitca_signer_stale_messages_total 1"));
        CHECK(signer.last_id_ > before);
        CHECK(signer.running());
    }

    CHECK(signer.stop() == 0);
    const auto verified = audit_verify(ca, work / "audit");
    INFO(verified.output);
    CHECK(verified.exit_code == 0);
    std::filesystem::remove_all(work);
    std::filesystem::remove_all(ca.dir);
}

TEST_CASE("the front holds no PIN, no HSM and no audit key, runs unprivileged and confined",
          "[ca-service][privsep]") {
    const auto& ca = TestCa::shared();
    auto work = make_temp_dir("splitca-privsep-front");
    ServiceOptions options;
    options.env = {{"SPLITCA_TEST_SECRET", "in-the-supervisor-environment"}};
    CaService svc(ca, work, options);
    const int front = svc.role_pid("front");
    const int signer = svc.role_pid("signer");
    REQUIRE(front > 0);
    REQUIRE(signer > 0);
    const auto fs = proc_status(front);
    INFO(svc.log());
    CHECK(fs.at("NoNewPrivs") == "1");
    CHECK(fs.at("Seccomp") == "2");  // a filter
    if (::geteuid() == 0) {
        CHECK(first_field(fs.at("Uid")) != "0");
        CHECK(first_field(fs.at("Gid")) != "0");
        std::istringstream groups(fs.at("Groups"));
        for (std::string g; groups >> g;) CHECK(g != "0");
    } else {
        WARN("not root: the front keeps the test's user");
    }

    // Memory maps: the signer has the PKCS#11 module loaded, the front does not.
    const auto front_maps = read_file("/proc/" + std::to_string(front) + "/maps");
    const auto signer_maps = read_file("/proc/" + std::to_string(signer) + "/maps");
    CHECK_THAT(signer_maps, ContainsSubstring("softhsm"));
    CHECK_THAT(front_maps, !ContainsSubstring("softhsm"));
    CHECK_THAT(front_maps, !ContainsSubstring("p11-kit"));

    // Environment: the supervisor's variables stop at the signer.
    const auto pin = read_file(ca.issuing_pin());
    const auto front_env = read_file("/proc/" + std::to_string(front) + "/environ");
    const auto signer_env = read_file("/proc/" + std::to_string(signer) + "/environ");
    CHECK_THAT(signer_env, ContainsSubstring("SPLITCA_TEST_SECRET"));
    CHECK_THAT(front_env, !ContainsSubstring("SPLITCA_TEST_SECRET"));
    CHECK_THAT(front_env, !ContainsSubstring("SOFTHSM2_CONF"));
    CHECK(front_env.find(pin) == std::string::npos);

    // Open files: sockets, pipes and anonymous descriptors only; nothing of the audit log, the
    // state or the PIN.
    for (const auto& entry : std::filesystem::directory_iterator("/proc/" + std::to_string(front) + "/fd")) {
        std::error_code ec;
        const auto target = std::filesystem::read_symlink(entry.path(), ec).string();
        INFO(entry.path() << " -> " << target);
        CHECK((target.starts_with("socket:") || target.starts_with("pipe:") || target.starts_with("anon_inode:") ||
               target == "/dev/null" || target.find("service.log") != std::string::npos));
    }

    // As the front's user: the audit directory and the PIN cannot be read.
    if (::geteuid() == 0) {
        const std::string uid = first_field(fs.at("Uid")), gid = first_field(fs.at("Gid"));
        const std::vector<std::string> as_front = {"setpriv", "--reuid=" + uid, "--regid=" + gid, "--clear-groups"};
        auto ls = as_front;
        ls.insert(ls.end(), {"ls", svc.audit_dir().string()});
        const auto listed = run(ls);
        CHECK(listed.exit_code != 0);
        CHECK_THAT(listed.output, ContainsSubstring("Permission denied"));
        auto cat = as_front;
        cat.insert(cat.end(), {"cat", ca.issuing_pin().string()});
        CHECK(run(cat).exit_code != 0);
    }

    // The filter itself: a system call outside it kills the process.
    for (const char* call : {"socket", "execve"}) {
        INFO(call);
        const auto r = sh((kBinDir / "ca-service").string() + " --sandbox-self-test " + call + "; echo status=$?");
        CHECK_THAT(r.output, ContainsSubstring("status=159"));  // 128 + SIGSYS
    }
    const auto ok = sh((kBinDir / "ca-service").string() + " --sandbox-self-test ok; echo status=$?");
    CHECK_THAT(ok.output, ContainsSubstring("confined, still running"));
    CHECK_THAT(ok.output, ContainsSubstring("status=0"));
    std::filesystem::remove_all(work);
}

TEST_CASE("kill -9 of the front under load loses no record; the supervisor starts a new front",
          "[ca-service][privsep]") {
    const auto& ca = TestCa::shared();
    auto work = make_temp_dir("splitca-privsep-kill-front");
    CaService svc(ca, work);
    const auto cert = (ca.dir / "nodes/node-1/node.pem").string(), key = (ca.dir / "nodes/node-1/node.key").string();
    const int first_front = svc.role_pid("front");
    const int signer = svc.role_pid("signer");
    REQUIRE(first_front > 0);

    std::atomic<bool> stop{false};
    std::atomic<int> after_kill{0};
    std::atomic<bool> killed{false};
    std::mutex mu;
    std::set<std::string> serials;  // of certificates a client received
    std::vector<std::thread> clients;
    for (int t = 0; t < 3; ++t) {
        clients.emplace_back([&, t] {
            for (int i = 0; !stop; ++i) {
                const auto body = leaf_request_json({"c" + std::to_string(t) + "-" + std::to_string(i) + ".example.com"},
                                                    new_public_key_b64());
                const auto r = curl_request(ca, svc.url("/v1/leaf"), cert, key, "POST", body);
                if (r.status != 200) continue;
                const auto j = Json::parse(r.body);
                std::lock_guard lock(mu);
                serials.insert(j["serial"].get<std::string>());
                if (killed) ++after_kill;
            }
        });
    }
    const auto wait_for = [](auto predicate, std::chrono::seconds limit) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (!predicate() && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        return predicate();
    };
    REQUIRE(wait_for([&] { std::lock_guard l(mu); return serials.size() >= 10; }, std::chrono::seconds(30)));
    ::kill(first_front, SIGKILL);
    killed = true;
    const bool served_again = wait_for([&] { return after_kill.load() >= 10; }, std::chrono::seconds(30));
    INFO(svc.log());
    CHECK(served_again);
    stop = true;
    for (auto& t : clients) t.join();

    const int second_front = svc.role_pid("front");
    CHECK(second_front > 0);
    CHECK(second_front != first_front);
    CHECK(svc.role_pid("signer") == signer);  // the signer never noticed
    INFO(svc.log());
    CHECK_THAT(svc.log(), ContainsSubstring("the front was killed by signal 9"));
    svc.stop();

    // Every certificate a client received is in the log, which verifies.
    const auto shown = audit_show(svc.audit_dir());
    std::size_t missing = 0;
    for (const auto& serial : serials)
        if (shown.find("\"serial\":\"" + serial + "\"") == std::string::npos) ++missing;
    CHECK(missing == 0);
    const auto verified = audit_verify(ca, svc.audit_dir());
    INFO(verified.output);
    CHECK(verified.exit_code == 0);
    std::filesystem::remove_all(work);
}

TEST_CASE("a killed signer: 503 signer_unavailable with the reason, then recovery by itself",
          "[ca-service][privsep]") {
    const auto& ca = TestCa::shared();
    auto work = make_temp_dir("splitca-privsep-kill-signer");
    CaService svc(ca, work);
    const auto cert = (ca.dir / "nodes/node-1/node.pem").string(), key = (ca.dir / "nodes/node-1/node.key").string();
    const auto issue = [&] {
        return curl_request(ca, svc.url("/v1/leaf"), cert, key, "POST",
                            leaf_request_json({"s.example.com"}, new_public_key_b64()));
    };
    REQUIRE(issue().status == 200);
    const int first_signer = svc.role_pid("signer");
    const int front = svc.role_pid("front");
    REQUIRE(first_signer > 0);
    ::kill(first_signer, SIGKILL);

    // Until the new signer says hello, requests fail fast with the reason.
    HttpReply unavailable;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < deadline) {
        auto r = issue();
        if (r.status == 503) {
            unavailable = r;
            break;
        }
    }
    INFO(unavailable.body << svc.log());
    CHECK(unavailable.status == 503);
    CHECK_THAT(unavailable.body, ContainsSubstring("signer_unavailable"));
    CHECK_THAT(unavailable.body, ContainsSubstring("killed by signal 9"));
    CHECK_THAT(unavailable.headers, ContainsSubstring("Retry-After"));

    // Back by itself, as a new epoch, with the same front.
    int status = 0;
    for (int i = 0; i < 200 && status != 200; ++i) {
        status = issue().status;
        if (status != 200) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    CHECK(status == 200);
    CHECK(svc.role_pid("front") == front);
    CHECK(svc.role_pid("signer") != first_signer);
    const auto metrics = curl_request(ca, svc.url("/metrics"), cert, key);
    CHECK_THAT(metrics.body, ContainsSubstring("splitca_signer_epoch 2"));
    CHECK_THAT(metrics.body, ContainsSubstring("splitca_signer_up 1"));
    svc.stop();
    const auto verified = audit_verify(ca, svc.audit_dir());
    INFO(verified.output);
    CHECK(verified.exit_code == 0);
    std::filesystem::remove_all(work);
}
