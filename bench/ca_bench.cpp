// ca-bench: issuance speed against the HSM's raw signature rate, measured in one run.
//   1. raw HSM ECDSA signatures (C_SignInit + C_Sign on a digest, one session per thread,
//      with a session-object copy of the key: the fastest way this HSM signs)
//   2. in-process issuance: policy + TBS build + HSM signature + durable audit record
//   3. end to end: K node connections (persistent mTLS, one request in flight on each, driven
//      from one event loop) to a real ca-service
// Last line: "ratio in_process=<x> end_to_end=<y>": each phase's median rate divided by the
// best raw round of the run. The line before gives CPU per signature and per certificate:
// idle time does not move those, though a slow spell of the machine raises them too.

#include "audit/audit_log.hpp"
#include "authority/issuance_service.hpp"
#include "authority/leaf_issuer.hpp"
#include "authority/node_registry.hpp"
#include "ossl/digest.hpp"
#include "ossl/error.hpp"
#include "ossl/pem.hpp"
#include "policy/issuance_policy.hpp"
#include "policy/rate_limiter.hpp"
#include "protocol/leaf.hpp"
#include "protocol/paths.hpp"
#include "support/bench_ca.hpp"
#include "support/cpu_time.hpp"
#include "support/process.hpp"

#include <httplib.h>
#include <openssl/err.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <mutex>
#include <optional>
#include <regex>
#include <sstream>
#include <thread>

namespace {

struct Options {
    std::filesystem::path ca_dir;
    int hsm_threads = 2;
    int clients = 32;
    std::chrono::milliseconds phase{1500};
    int rounds = 3;
    std::string only;  // "", "in_process" or "end_to_end"
    std::uint16_t port = 0;  // 0: a free loopback port
};

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
            return argv[++i];
        };
        if (a == "--ca-dir") o.ca_dir = value();
        else if (a == "--hsm-threads") o.hsm_threads = std::stoi(value());
        else if (a == "--clients") o.clients = std::stoi(value());
        else if (a == "--phase-ms") o.phase = std::chrono::milliseconds(std::stoi(value()));
        else if (a == "--rounds") o.rounds = std::stoi(value());
        else if (a == "--only") o.only = value();
        else if (a == "--port") o.port = static_cast<std::uint16_t>(std::stoi(value()));
        else if (a == "--help" || a == "-h") {
            std::cout << "usage: ca-bench [--ca-dir DIR] [--clients K] [--hsm-threads N] [--phase-ms MS] [--rounds R] [--port P]\n"
                         "                [--only in_process|end_to_end]\n"
                         "Without --ca-dir a temporary SoftHSM CA is made with hsm-setup. The end-to-end phase\n"
                         "starts build/bin/ca-service on 127.0.0.1:P with a copy of the CA's configuration.\n";
            std::exit(0);
        } else throw std::invalid_argument("unknown option " + a);
    }
    if (!o.only.empty() && o.only != "in_process" && o.only != "end_to_end")
        throw std::invalid_argument("--only takes in_process or end_to_end");
    if (o.clients < 1 || o.clients > 512 || o.hsm_threads < 1 || o.hsm_threads > 64 || o.rounds < 1)
        throw std::invalid_argument("--clients must be 1-512 and --hsm-threads 1-64");
    return o;
}

std::string public_key_b64() {
    ossl::PKey key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    return ossl::to_base64(ossl::public_key_der(*key));
}

ossl::Bytes public_key_der() { return *ossl::from_base64(public_key_b64()); }

struct Latencies {
    std::mutex mu;
    std::vector<double> ms;
    void add(std::vector<double>& local) {
        std::lock_guard lock(mu);
        ms.insert(ms.end(), local.begin(), local.end());
    }
    double percentile(double p) {
        if (ms.empty()) return 0;
        std::sort(ms.begin(), ms.end());
        return ms[std::min(ms.size() - 1, static_cast<std::size_t>(p * static_cast<double>(ms.size())))];
    }
};

// The CPU a phase took per operation (microseconds), one figure per round.
struct PhaseCost {
    std::vector<double> cpu_us;
    void add(const std::vector<double>& per_op) {
        if (!per_op.empty()) cpu_us.push_back(per_op.front());
    }
};

double raw_rate(const bench::BenchCa& ca, const Options& o, PhaseCost* cost = nullptr) {
    auto cfg = ca.issuing_signer();
    pkcs11::Module module(ca.module);
    const CK_SLOT_ID slot = module.slot_for_token(cfg.hsm.token_label);
    const std::string pin = pkcs11::read_pin(cfg.hsm.pin);
    std::vector<std::unique_ptr<pkcs11::Session>> sessions;
    std::vector<CK_OBJECT_HANDLE> keys;
    for (int t = 0; t < o.hsm_threads; ++t) {
        sessions.push_back(std::make_unique<pkcs11::Session>(module, slot));
        sessions.back()->login(pin, cfg.hsm.token_label);
        keys.push_back(sessions.back()->find_one(CKO_PRIVATE_KEY, ca.issuing_key_label));
        // The HSM's best rate: a session-object copy of the key, as HsmSigner signs with
        // (SoftHSM re-reads a token object's file on every use; a session copy is ~40% faster).
        CK_BBOOL session_only = CK_FALSE;
        CK_ATTRIBUTE copy_tmpl[] = {{CKA_TOKEN, &session_only, sizeof session_only}};
        CK_OBJECT_HANDLE copy = CK_INVALID_HANDLE;
        if (sessions.back()->api()->C_CopyObject(sessions.back()->handle(), keys.back(), copy_tmpl, 1, &copy) == CKR_OK)
            keys.back() = copy;
    }
    const auto digest = ossl::sha256(ossl::as_bytes("a to-be-signed certificate"));
    const bench::CpuMeter meter({0});
    const double rate = bench::measure_rate(o.hsm_threads, o.phase, [&](int t) {
        sessions[static_cast<std::size_t>(t)]->sign(keys[static_cast<std::size_t>(t)], CKM_ECDSA, digest);
    });
    if (cost != nullptr) cost->add(meter.us_per_op(rate));
    return rate;
}

// Bounds the requests in flight; blocks without spinning.
class InFlight {
public:
    explicit InFlight(int limit) : free_(limit), limit_(limit) {}
    void acquire() {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return free_ > 0; });
        --free_;
    }
    void release() {
        std::lock_guard lock(mu_);
        ++free_;
        cv_.notify_one();
        if (free_ == limit_) drained_.notify_all();
    }
    void drain() {  // waits for every request in flight
        std::unique_lock lock(mu_);
        drained_.wait(lock, [&] { return free_ == limit_; });
    }

private:
    std::mutex mu_;
    std::condition_variable cv_;
    std::condition_variable drained_;
    int free_;
    const int limit_;
};

// Rounds alternate the measured path with the raw baseline, so the baseline is sampled
// across the whole run.
struct Paired {
    std::vector<double> raw, measured;
    PhaseCost raw_cost, cost;                // CPU per signature / per certificate
    PhaseCost service_cost, client_cost;     // end to end: the ca-service's and the clients' shares
};

void in_process_rounds(const bench::BenchCa& ca, const Options& o, Latencies& lat, Paired& out) {
    auto cfg = ca.issuing_signer();
    pkcs11::HsmSigner signer(cfg);  // concurrency as the service runs it (default 8)
    pkcs11::SignerConfig audit_cfg = cfg;
    audit_cfg.key = pkcs11::Uri::parse("pkcs11:token=splitca-issuing;object=audit");
    pkcs11::HsmSigner audit_signer(audit_cfg);
    auto issuing = ossl::load_certificate(ca.dir / "pki/issuing-ca.pem");
    ca::LeafIssuer issuer(signer, *issuing);
    ca::policy::IssuancePolicy policy(ca::policy::PolicyConfig{});
    ca::policy::RateLimiter limiter({1e6, 1e6});
    const auto work = bench::BenchCa::open_or_create(ca.dir).dir / "bench-work";
    std::filesystem::remove_all(work);
    ca::NodeRegistry nodes(work / "state");
    ca::audit::AuditLog audit({work / "audit"}, audit_signer);
    ca::IssuanceService service(policy, limiter, issuer, audit, nodes, {ossl::to_pem(*issuing)}, std::chrono::seconds(5));

    protocol::LeafRequest req;
    req.public_key = public_key_der();
    std::atomic<int> failures{0};
    std::vector<std::vector<double>> per_thread(static_cast<std::size_t>(o.hsm_threads));
    std::mutex latency_mu;
    InFlight window(o.clients);
    ca::NodeIdentity node{"bench-node", std::string(64, 'a'), false};
    for (int round = 0; round < o.rounds; ++round) {
    out.raw.push_back(raw_rate(ca, o, &out.raw_cost));
    const bench::CpuMeter meter({0});
    // As the service drives it: as many issuing threads as HSM threads, each keeping its
    // share of `clients` requests in flight through the asynchronous API (a completion per
    // durable audit record, no thread parked per request).
    out.measured.push_back(bench::measure_rate(o.hsm_threads, o.phase, [&](int t) {
        thread_local std::uint64_t n = 0;
        window.acquire();
        protocol::LeafRequest r = req;
        r.names = {"host" + std::to_string(t) + "-" + std::to_string(n++) + ".example.com"};
        const auto start = std::chrono::steady_clock::now();
        service.issue_async(node, r, [&, start, t](ca::IssuanceOutcome result) {
            const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
            {
                std::lock_guard lock(latency_mu);
                per_thread[static_cast<std::size_t>(t)].push_back(ms);
            }
            if (!std::holds_alternative<protocol::LeafResponse>(result)) failures++;
            window.release();
        });
    }));
    window.drain();
    out.cost.add(meter.us_per_op(out.measured.back()));
    std::printf("  round %d: raw %.0f/s, in-process %.0f/s\n", round + 1, out.raw.back(), out.measured.back());
    }
    for (auto& v : per_thread) lat.add(v);
    std::printf("  in-process: %d failures; %llu audit records in %llu fsyncs\n", failures.load(),
                static_cast<unsigned long long>(audit.stats().records_written),
                static_cast<unsigned long long>(audit.stats().syncs));
    audit.close();
    std::filesystem::remove_all(work);
    if (failures > 0) throw std::runtime_error("in-process issuance failed");
}

// One node connection: persistent TLS 1.3, one SSL_write per request, Content-Length framed
// responses. Connected and handshaken blocking, then driven non-blocking by EventDriver.
class LeanClient {
public:
    LeanClient(SSL_CTX* ctx, std::uint16_t port) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int one = 1;
        ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
            throw std::runtime_error("connect to the ca-service failed");
        ssl_.reset(SSL_new(ctx));
        SSL_set_fd(ssl_.get(), fd_);
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_.get()), "127.0.0.1");
        if (SSL_connect(ssl_.get()) != 1) throw ossl::Error("TLS handshake with the ca-service");
        ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
    }
    ~LeanClient() {
        ssl_.reset();
        if (fd_ >= 0) ::close(fd_);
    }
    LeanClient(const LeanClient&) = delete;
    LeanClient& operator=(const LeanClient&) = delete;

    int fd() const { return fd_; }
    bool busy() const { return busy_; }
    bool wants_write() const { return sent_ < out_.size(); }
    std::chrono::steady_clock::time_point started() const { return started_; }

    void start(const std::string& path, const std::string& body) {
        out_ = "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: " +
               std::to_string(body.size()) + "\r\n\r\n" + body;
        sent_ = 0;
        in_.clear();
        busy_ = true;
        started_ = std::chrono::steady_clock::now();
        flush();
    }
    // Progress after poll(); the status code once the response is complete (0: the
    // connection broke), nullopt while it is not.
    std::optional<int> progress() {
        if (!flush()) return finish(0);
        char buf[16384];
        for (;;) {
            ERR_clear_error();  // SSL_get_error() reads the thread's queue: nothing stale in it
            int n = SSL_read(ssl_.get(), buf, sizeof buf);
            if (n <= 0) {
                int err = SSL_get_error(ssl_.get(), n);
                if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) break;
                return finish(0);
            }
            in_.append(buf, static_cast<std::size_t>(n));
        }
        const std::size_t header_end = in_.find("\r\n\r\n");
        if (header_end == std::string::npos) return std::nullopt;
        std::string head = in_.substr(0, header_end);
        std::transform(head.begin(), head.end(), head.begin(), ::tolower);
        std::size_t length = 0;
        if (auto p = head.find("content-length:"); p != std::string::npos) length = std::stoul(head.substr(p + 15));
        if (in_.size() < header_end + 4 + length) return std::nullopt;
        return finish(std::atoi(in_.c_str() + 9));
    }

private:
    bool flush() {
        while (sent_ < out_.size()) {
            ERR_clear_error();
            int n = SSL_write(ssl_.get(), out_.data() + sent_, static_cast<int>(out_.size() - sent_));
            if (n <= 0) {
                int err = SSL_get_error(ssl_.get(), n);
                return err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ;
            }
            sent_ += static_cast<std::size_t>(n);
        }
        return true;
    }
    int finish(int status) {
        busy_ = false;
        return status;
    }

    int fd_ = -1;
    ossl::Ssl ssl_;
    std::string out_, in_;
    std::size_t sent_ = 0;
    bool busy_ = false;
    std::chrono::steady_clock::time_point started_;
};

// Keeps one request in flight on every connection from a single poll() loop, so that the
// load generator costs the shared CPU as little as a node's event loop would (a blocked
// thread per connection spends about as much CPU switching as the service spends serving).
struct DriverResult {
    double per_second = 0;
    long long failures = 0;
};
DriverResult drive(std::vector<std::unique_ptr<LeanClient>>& clients, std::chrono::milliseconds duration,
                   const std::function<std::string(std::size_t)>& body_for, std::vector<double>& latencies_ms) {
    const auto begin = std::chrono::steady_clock::now();
    const auto stop = begin + duration;
    long long done = 0, failures = 0;
    for (std::size_t i = 0; i < clients.size(); ++i) clients[i]->start(std::string(protocol::kLeafPath), body_for(i));
    std::vector<pollfd> fds(clients.size());
    for (;;) {
        std::size_t active = 0;
        for (std::size_t i = 0; i < clients.size(); ++i) {
            fds[i] = {clients[i]->fd(), 0, 0};
            if (!clients[i]->busy()) continue;
            fds[i].events = static_cast<short>(POLLIN | (clients[i]->wants_write() ? POLLOUT : 0));
            ++active;
        }
        if (active == 0) break;
        if (::poll(fds.data(), fds.size(), 10000) <= 0) throw std::runtime_error("the ca-service stopped answering");
        for (std::size_t i = 0; i < clients.size(); ++i) {
            if (fds[i].revents == 0) continue;
            auto status = clients[i]->progress();
            if (!status) continue;
            const auto now = std::chrono::steady_clock::now();
            latencies_ms.push_back(std::chrono::duration<double, std::milli>(now - clients[i]->started()).count());
            ++done;
            if (*status != 200) ++failures;
            if (*status == 0) throw std::runtime_error("a connection to the ca-service broke");
            if (now < stop) clients[i]->start(std::string(protocol::kLeafPath), body_for(i));
        }
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
    return {static_cast<double>(done) / secs, failures};
}

ossl::SslCtx node_tls_context(const bench::BenchCa& ca) {
    ossl::SslCtx ctx(SSL_CTX_new(TLS_client_method()));
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_3_VERSION);
    if (SSL_CTX_use_certificate_chain_file(ctx.get(), (ca.dir / "nodes/node-1/node.pem").c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx.get(), (ca.dir / "nodes/node-1/node.key").c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_load_verify_locations(ctx.get(), (ca.dir / "pki/service-ca.pem").c_str(), nullptr) != 1)
        throw std::runtime_error("loading the node identity from " + ca.dir.string());
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    return ctx;
}

void end_to_end_rounds(const bench::BenchCa& ca, Options o, Latencies& lat, Paired& out) {
    if (o.port == 0) o.port = testing_support::free_port();
    // A private copy of the configuration: own port, own audit and state directories.
    const auto work = ca.dir / "bench-e2e";
    std::filesystem::remove_all(work);
    std::filesystem::create_directories(work);
    std::ifstream in(ca.dir / "ca-service/ca-service.toml");
    std::stringstream ss;
    ss << in.rdbuf();
    std::string toml = ss.str();
    toml = std::regex_replace(toml, std::regex("address = \"[^\"]+\""),
                              "address = \"127.0.0.1:" + std::to_string(o.port) + "\"");
    toml = std::regex_replace(toml, std::regex("directory = \"[^\"]+/audit\""),
                              "directory = \"" + (work / "audit").string() + "\"");
    toml = std::regex_replace(toml, std::regex("directory = \"[^\"]+/state\""),
                              "directory = \"" + (work / "state").string() + "\"");
    toml = std::regex_replace(toml, std::regex("per_node_per_second = [0-9.]+"), "per_node_per_second = 1000000");
    toml = std::regex_replace(toml, std::regex("burst = [0-9.]+"), "burst = 1000000");
    std::ofstream(work / "ca-service.toml") << toml;

    const std::string binary = std::string(SPLITCA_BIN_DIR) + "/ca-service";
    testing_support::Child service({binary, "--config", (work / "ca-service.toml").string()}, work / "ca-service.log");

    auto make_client = [&] {
        auto c = std::make_unique<httplib::SSLClient>("127.0.0.1", o.port,
                                                      (ca.dir / "nodes/node-1/node.pem").string(),
                                                      (ca.dir / "nodes/node-1/node.key").string());
        c->set_ca_cert_path((ca.dir / "pki/service-ca.pem").c_str());
        c->enable_server_certificate_verification(true);
        c->set_keep_alive(true);
        c->set_tcp_nodelay(true);
        c->set_read_timeout(10, 0);
        return c;
    };
    // Wait for the listener.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    for (;;) {
        auto probe = make_client();
        auto r = probe->Get(std::string(protocol::kHealthPath));
        if (r && r->status == 200) break;
        if (!service.running())
            throw std::runtime_error("ca-service exited; see " + (work / "ca-service.log").string());
        if (std::chrono::steady_clock::now() > deadline)
            throw std::runtime_error("ca-service did not come up; see " + (work / "ca-service.log").string());
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }

    // The service is three processes: the supervisor (idle) and its two children, the front
    // and the signer; their CPU together is the service's.
    std::vector<int> service_pids;
    {
        std::ifstream children("/proc/" + std::to_string(service.pid()) + "/task/" + std::to_string(service.pid()) +
                               "/children");
        for (int pid = 0; children >> pid;) service_pids.push_back(pid);
    }
    if (service_pids.size() != 2)
        throw std::runtime_error("expected the ca-service's front and signer as children of pid " +
                                 std::to_string(service.pid()) + ", found " + std::to_string(service_pids.size()));
    service_pids.push_back(service.pid());

    const std::string key = public_key_b64();
    auto tls = node_tls_context(ca);
    std::vector<std::unique_ptr<LeanClient>> clients;
    for (int i = 0; i < o.clients; ++i) clients.push_back(std::make_unique<LeanClient>(tls.get(), o.port));
    long long failures = 0;
    std::vector<double> latencies;
    std::vector<std::uint64_t> sent(clients.size(), 0);
    auto body_for = [&](std::size_t i) {
        return "{\"names\":[\"e2e" + std::to_string(i) + "-" + std::to_string(sent[i]++) + ".example.org\"],\"public_key\":\"" +
               key + "\"}";
    };
    for (int round = 0; round < o.rounds; ++round) {
        out.raw.push_back(raw_rate(ca, o, &out.raw_cost));
        auto pids = service_pids;
        pids.push_back(0);
        const bench::CpuMeter meter(pids);
        const DriverResult r = drive(clients, o.phase, body_for, latencies);
        out.measured.push_back(r.per_second);
        if (const auto us = meter.us_per_op(r.per_second); !us.empty()) {
            const double service_us = us[0] + us[1] + us[2];
            out.cost.add({service_us + us[3]});
            out.service_cost.add({service_us});
            out.client_cost.add({us[3]});
        }
        failures += r.failures;
        std::printf("  round %d: raw %.0f/s, end-to-end %.0f/s\n", round + 1, out.raw.back(), out.measured.back());
    }
    lat.add(latencies);
    if (failures > 0) throw std::runtime_error(std::to_string(failures) + " end-to-end requests failed");
}

}  // namespace

int main(int argc, char** argv) try {
    const Options o = parse(argc, argv);
    ::signal(SIGPIPE, SIG_IGN);
    auto ca = bench::BenchCa::open_or_create(o.ca_dir);

    std::printf("ca-bench: %d HSM threads, %d concurrent clients, %lld ms per phase\n", o.hsm_threads, o.clients,
                static_cast<long long>(o.phase.count()));
    Latencies in_lat, e2e_lat;
    Paired in_process, e2e;
    if (o.only != "end_to_end") in_process_rounds(ca, o, in_lat, in_process);
    if (o.only != "in_process") end_to_end_rounds(ca, o, e2e_lat, e2e);
    std::vector<double> all_raw = in_process.raw;
    all_raw.insert(all_raw.end(), e2e.raw.begin(), e2e.raw.end());
    // The HSM's rate is the best of its rounds: on this shared machine SoftHSM's two-thread
    // rate drops by up to 40% in some rounds (CPU per signature rises with it), and a slow
    // baseline round would flatter the ratios. Dividing by the best round understates them.
    const double raw = all_raw.empty() ? 0 : *std::max_element(all_raw.begin(), all_raw.end());
    const double in_rate = bench::median(in_process.measured), e2e_rate = bench::median(e2e.measured);
    std::printf("raw HSM sign rate:        %8.0f signatures/s (best of %zu rounds, median %.0f; %d threads)\n", raw,
                all_raw.size(), bench::median(all_raw), o.hsm_threads);
    // A phase left out with --only prints "skipped", not a rate of nothing.
    auto rate_line = [](const char* label, const Paired& p, double rate, Latencies& lat) {
        if (p.measured.empty()) {
            std::printf("%s   skipped (--only)\n", label);
            return;
        }
        std::printf("%s %8.0f certificates/s  (p50 %.2f ms, p99 %.2f ms)\n", label, rate, lat.percentile(0.5),
                    lat.percentile(0.99));
    };
    rate_line("in-process issuance rate:", in_process, in_rate, in_lat);
    rate_line("end-to-end mTLS rate:    ", e2e, e2e_rate, e2e_lat);
    auto ratio = [raw](const Paired& p, double rate) {
        if (p.measured.empty() || raw <= 0) return std::string("skipped");
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.2f", rate / raw);
        return std::string(buf);
    };
    // CPU per operation: what each path costs, whatever share of the machine it got (a slow
    // spell of the machine still raises it: compare with the raw figure of the same run).
    std::vector<double> raw_cpu = in_process.raw_cost.cpu_us;
    raw_cpu.insert(raw_cpu.end(), e2e.raw_cost.cpu_us.begin(), e2e.raw_cost.cpu_us.end());
    std::printf("CPU per operation (medians): raw %.1f us/signature", bench::median(raw_cpu));
    if (!in_process.cost.cpu_us.empty())
        std::printf(", in-process %.1f us/certificate", bench::median(in_process.cost.cpu_us));
    if (!e2e.cost.cpu_us.empty())
        std::printf(", end-to-end %.1f us/certificate (ca-service %.1f, clients %.1f)", bench::median(e2e.cost.cpu_us),
                    bench::median(e2e.service_cost.cpu_us), bench::median(e2e.client_cost.cpu_us));
    std::printf("\n");
    std::printf("ratio in_process=%s end_to_end=%s\n", ratio(in_process, in_rate).c_str(), ratio(e2e, e2e_rate).c_str());
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "ca-bench: %s\n", e.what());
    return 1;
}
