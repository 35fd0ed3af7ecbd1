// proxy-bench: how much of a direct connection's performance survives the proxy.
//
// One run, everything on this machine: a temporary SoftHSM CA (hsm-setup), the real
// ca-service, the real proxy-node and a local HTTPS origin (tests/support/origin_server)
// that serves a distinct certificate per name. The same client TLS stack (OpenSSL, the
// same SSL_CTX settings, no session resumption, same request mix) measures each path
// direct to the origin and through the proxy, the cached and forging phases in alternating
// rounds (each ratio is the median of the rounds' own proxy/direct ratios):
//   cached   new TLS connections/s to one name (the proxy's certificate is cached)
//   forging  new TLS connections/s over many distinct registrable domains, each with its
//            own origin certificate, each visited once (every one needs a new leaf)
//   bulk     single-stream download MB/s
// plus p50/p99 latency of a sequential connection on the cached path. The cached and bulk
// phases also run through a second node with the integrated inspector on (every body byte
// scanned). HTTP/2 paths run against nginx (Debian, http2 on) on the same machine, direct
// and through the inspecting node (h2 on both sides, every stream inspected), with the same
// nghttp2 client (support/h2_client):
//   h2_cached       new connections/s with one request each (the leaf cached)
//   h2_bulk         single-stream download MB/s
//   h2_multiplexed  requests/s of 100 streams of 1 KB at a time on one connection
// Last line (proxy divided by direct):
//   ratio cached=<x> forging=<y> bulk=<z> bulk_inspected=<b> cached_inspected=<c>
//         h2_cached=<d> h2_bulk=<e> h2_multiplexed=<f>
//
// --icap instead compares, in one run, three nodes on the same origin: inspection off, the
// integrated rule set, and the rule set plus ICAP to a real engine (c-icap's virus_scan on
// clamd, started here with a test signature database; tests/support/clamav_icap): small
// objects (4 KiB, keep-alive, requests/s) and a bulk download (MB/s), each with the node's
// own CPU per message (or per MB). Last line:
//   icap small_rps_ratio=<icap/rules> small_cpu_ratio=<icap/rules>
//        small_cpu_ratio_same_rate=<icap / rules paced to the ICAP path's rate> bulk_cpu_ratio=<icap/rules>
// The target: small_cpu_ratio <= 1.3 (the engine, not the proxy, is the bottleneck). CPU
// per message falls with load, so the rule set is also measured at the ICAP path's rate.
//
// --transparent instead runs the whole bench in a network namespace of its own (root) and
// compares, on the cached path, direct against CONNECT and against transparent
// interception: the client connects straight to the origin's address from 127.0.0.3, and an
// nftables NAT rule in that namespace redirects exactly those connections to the node's
// listen.transparent. Last line:
//   transparent cached_ratio=<transparent/direct> connect_ratio=<CONNECT/direct>
// (target: cached_ratio >= 0.55).
//
// --mail instead compares mail delivery: a real MTA (python3-aiosmtpd with STARTTLS,
// tests/integration/mail_server.py), 4 smtplib clients (tests/integration/mail_client.py)
// each sending 100 KB messages with a base64 attachment in one STARTTLS session, straight to
// the MTA and through the node's listen.smtp (STARTTLS on both sides, every MIME part
// inspected), rounds interleaved. Last line:
//   mail ratio=<node/direct messages per second> (target >= 0.5)

#include "support/bench_ca.hpp"
#include "support/clamav_icap.hpp"
#include "support/cpu_time.hpp"
#include "support/process.hpp"
#include "support/h2_client.hpp"
#include "support/nginx_origin.hpp"
#include "support/origin_pki.hpp"
#include "support/origin_server.hpp"

#include "ossl/error.hpp"
#include "ossl/pem.hpp"

#include <nlohmann/json.hpp>
#include <openssl/err.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <regex>
#include <sstream>
#include <thread>
#include <utility>

namespace {

using Clock = std::chrono::steady_clock;
using namespace testing_support;

struct Options {
    int clients = 16;                      // concurrent connections for the rate phases
    std::chrono::milliseconds phase{2000};  // cached-path phase length, per path and round
    int rounds = 3;                         // cached and forging phases alternate paths per round
    int forging_names = 1500;
    std::uint64_t bulk_bytes = 1ULL << 30;
    int latency_samples = 400;
    std::filesystem::path ca_dir;  // existing hsm-setup directory; empty: temporary
    bool tls12 = false;            // the origin speaks TLS 1.2 at most
    int idle = 0;                  // intercepted connections held idle for the memory phase; 0: none
    bool icap = false;             // the ICAP comparison instead of the other phases
    bool transparent = false;      // transparent interception on the cached path instead
    bool mail = false;             // mail through listen.smtp instead
};

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
            return argv[++i];
        };
        if (a == "--clients") o.clients = std::stoi(next());
        else if (a == "--phase-ms") o.phase = std::chrono::milliseconds(std::stoi(next()));
        else if (a == "--rounds") o.rounds = std::stoi(next());
        else if (a == "--forging-names") o.forging_names = std::stoi(next());
        else if (a == "--bulk-mb") o.bulk_bytes = std::stoull(next()) << 20;
        else if (a == "--ca-dir") o.ca_dir = next();
        else if (a == "--tls12") o.tls12 = true;
        else if (a == "--idle") o.idle = std::stoi(next());
        else if (a == "--icap") o.icap = true;
        else if (a == "--transparent") o.transparent = true;
        else if (a == "--mail") o.mail = true;
        else {
            std::fprintf(stderr,
                         "usage: proxy-bench [--clients N] [--phase-ms MS] [--rounds R] [--forging-names N] "
                         "[--bulk-mb MB] [--ca-dir DIR] [--tls12] [--idle N] [--icap | --transparent | --mail]\n");
            std::exit(2);
        }
    }
    if (o.clients < 1 || o.rounds < 1 || o.forging_names < o.rounds || o.phase.count() < 100 || o.idle < 0 ||
        o.idle > 100000)
        throw std::runtime_error("--clients and --rounds must be at least 1, --forging-names at least --rounds, "
                                 "--phase-ms at least 100, --idle from 0 to 100000");
    return o;
}

// The source address of the transparent path's clients: the bench's nftables rule steers
// connections from it, and only them, to the node (--transparent).
constexpr const char* kTransparentSource = "127.0.0.3";

int tcp_connect(std::uint16_t port, bool transparent_source = false) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (transparent_source) {
        sockaddr_in src{};
        src.sin_family = AF_INET;
        ::inet_pton(AF_INET, kTransparentSource, &src.sin_addr);
        if (::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) {
            ::close(fd);
            return -1;
        }
    }
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

// The client under test, identical for both paths apart from where it connects and which
// root it trusts.
struct Path {
    const char* name;
    SSL_CTX* ctx;
    std::uint16_t proxy_port;  // 0: direct
    bool h2 = false;           // HTTP/2 (ctx offers only h2) instead of HTTP/1.1
    bool transparent = false;  // to the origin from kTransparentSource (steered to the node)
};

ossl::SslCtx client_ctx(const std::filesystem::path& trust, bool h2 = false) {
    ossl::SslCtx ctx(SSL_CTX_new(TLS_client_method()));
    if (h2) SSL_CTX_set_alpn_protos(ctx.get(), reinterpret_cast<const unsigned char*>("\x02h2"), 3);
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    if (SSL_CTX_load_verify_locations(ctx.get(), trust.c_str(), nullptr) != 1) throw ossl::Error("loading " + trust.string());
    SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);  // every connection is new
    return ctx;
}

// A client connection: [CONNECT,] TLS handshake with verification. Closes its socket.
struct Connection {
    int fd = -1;
    ossl::Ssl ssl;
    Connection() = default;
    Connection(Connection&& o) noexcept : fd(std::exchange(o.fd, -1)), ssl(std::move(o.ssl)) {}
    Connection& operator=(Connection&&) = delete;
    ~Connection() {
        if (fd >= 0) ::close(fd);
    }
};

// Opens a connection to `host` on `p`; false on any failure.
bool open_connection(const Path& p, std::uint16_t origin_port, const std::string& host, Connection& c) {
    c.fd = tcp_connect(p.proxy_port != 0 ? p.proxy_port : origin_port, p.transparent);
    if (c.fd < 0) return false;
    if (p.proxy_port != 0) {
        const std::string req = "CONNECT " + host + ":" + std::to_string(origin_port) + " HTTP/1.1\r\nHost: " + host +
                                ":" + std::to_string(origin_port) + "\r\n\r\n";
        if (::send(c.fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) return false;
        // Read in whole segments, not a byte at a time: nothing can follow the proxy's answer
        // before the client speaks TLS, so a read never takes bytes that belong to the
        // handshake (any that did would fail the fetch).
        char head[4096];
        std::size_t have = 0;
        std::string_view view;
        for (;;) {
            const ssize_t n = ::recv(c.fd, head + have, sizeof head - have, 0);
            if (n <= 0) return false;
            have += static_cast<std::size_t>(n);
            view = std::string_view(head, have);
            if (view.find("\r\n\r\n") != std::string_view::npos) break;
            if (have == sizeof head) return false;
        }
        if (!view.starts_with("HTTP/1.1 200") || view.find("\r\n\r\n") + 4 != have) return false;
    }
    c.ssl.reset(SSL_new(p.ctx));
    SSL_set_fd(c.ssl.get(), c.fd);
    SSL_set_tlsext_host_name(c.ssl.get(), host.c_str());
    SSL_set1_host(c.ssl.get(), host.c_str());
    if (SSL_connect(c.ssl.get()) != 1) {
        ERR_clear_error();
        return false;
    }
    return true;
}

// One GET on `c`, its response read to its end (Content-Length). Returns the body bytes
// received, or -1 on any failure. `keep_alive` leaves the connection open for more.
long long get(Connection& c, const std::string& host, const std::string& path, std::vector<char>& buf, bool keep_alive) {
    const std::string req = "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\n" +
                            (keep_alive ? "" : "Connection: close\r\n") + "\r\n";
    if (SSL_write(c.ssl.get(), req.data(), static_cast<int>(req.size())) <= 0) return -1;
    std::string head;
    long long body = 0, expected = -1;
    for (;;) {
        int n = SSL_read(c.ssl.get(), buf.data(), static_cast<int>(buf.size()));
        if (n <= 0) break;
        if (expected < 0) {
            head.append(buf.data(), static_cast<std::size_t>(n));
            auto end = head.find("\r\n\r\n");
            if (end == std::string::npos) continue;
            if (head.rfind("HTTP/1.1 200", 0) != 0) return -1;
            auto cl = head.find("Content-Length: ");
            if (cl == std::string::npos) return -1;
            expected = std::stoll(head.substr(cl + 16));
            body = static_cast<long long>(head.size() - end - 4);
        } else {
            body += n;
        }
        if (expected >= 0 && body >= expected) break;
    }
    ERR_clear_error();
    return expected >= 0 && body == expected ? body : -1;
}

// One connection: [CONNECT,] TLS handshake with verification, one GET, response read to
// its end. Returns the body bytes received, or -1 on any failure.
bool selected_h2(SSL* ssl) {
    const unsigned char* alpn = nullptr;
    unsigned len = 0;
    SSL_get0_alpn_selected(ssl, &alpn, &len);
    return len == 2 && alpn[0] == 'h' && alpn[1] == '2';
}

long long fetch(const Path& p, std::uint16_t origin_port, const std::string& host, const std::string& path,
                std::vector<char>& buf) {
    Connection c;
    if (!open_connection(p, origin_port, host, c)) return -1;
    if (p.h2) {
        if (!selected_h2(c.ssl.get())) return -1;
        long long got = -1;
        {
            bench::H2Client h2(c.ssl.get(), host + ":" + std::to_string(origin_port));
            got = h2.get(path, 1);
        }
        SSL_shutdown(c.ssl.get());
        ERR_clear_error();
        return got;
    }
    const long long got = get(c, host, path, buf, false);
    SSL_shutdown(c.ssl.get());
    ERR_clear_error();
    return got;
}

// `n` connections on `p`, each idle after one request, opened by `clients` threads; the ones
// that opened (failures are counted in `failed`).
std::vector<Connection> hold_idle(const Path& p, std::uint16_t origin_port, const std::string& host, int n, int clients,
                                  long long& failed) {
    std::vector<std::vector<Connection>> per_thread(static_cast<std::size_t>(clients));
    std::atomic<int> next{0};
    std::atomic<long long> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < clients; ++t)
        threads.emplace_back([&, t] {
            std::vector<char> buf(16384);
            while (next++ < n) {
                Connection c;
                if (open_connection(p, origin_port, host, c) && get(c, host, "/", buf, true) >= 0)
                    per_thread[static_cast<std::size_t>(t)].push_back(std::move(c));
                else
                    ++failures;
            }
        });
    for (auto& t : threads) t.join();
    std::vector<Connection> all;
    all.reserve(static_cast<std::size_t>(n));
    for (auto& v : per_thread)
        for (auto& c : v) all.push_back(std::move(c));
    failed = failures.load();
    return all;
}

// Resident memory of a process (VmRSS), in KiB.
long rss_kib(int pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(in, line);)
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return -1;
}

// The node's completed upstream handshakes so far, from its /metrics: {resumed, full}.
std::pair<long long, long long> upstream_handshakes(std::uint16_t mgmt_port) {
    const auto m = testing_support::run({"curl", "-s", "http://127.0.0.1:" + std::to_string(mgmt_port) + "/metrics"}).output;
    auto value = [&](const std::string& resumed) {
        const std::string key = "proxy_upstream_tls_handshakes_total{resumed=\"" + resumed + "\"} ";
        const auto pos = m.find(key);
        return pos == std::string::npos ? -1LL : std::stoll(m.substr(pos + key.size()));
    };
    return {value("true"), value("false")};
}

struct RateResult {
    double per_second = 0;
    long long failures = 0;
};

// `clients` threads fetch names[next++] until `until` says stop; rate of completed fetches.
RateResult run_rate(const Path& p, std::uint16_t origin_port, int clients, const std::function<std::string(long long)>& name_for,
                    long long count_limit, std::chrono::milliseconds duration) {
    std::atomic<long long> next{0}, done{0}, failed{0};
    const auto start = Clock::now();
    const auto stop = start + duration;
    std::vector<std::thread> threads;
    for (int t = 0; t < clients; ++t)
        threads.emplace_back([&] {
            std::vector<char> buf(16384);
            for (;;) {
                long long i = next++;
                if ((count_limit > 0 && i >= count_limit) || (count_limit == 0 && Clock::now() >= stop)) return;
                if (fetch(p, origin_port, name_for(i), "/", buf) >= 0) ++done;
                else ++failed;
            }
        });
    for (auto& t : threads) t.join();
    const double secs = std::chrono::duration<double>(Clock::now() - start).count();
    return {static_cast<double>(done.load()) / secs, failed.load()};
}

std::vector<double> latencies(const Path& p, std::uint16_t origin_port, const std::string& host, int samples) {
    std::vector<double> out;
    std::vector<char> buf(16384);
    for (int i = 0; i < samples; ++i) {
        auto s = Clock::now();
        if (fetch(p, origin_port, host, "/", buf) < 0) continue;
        out.push_back(std::chrono::duration<double, std::milli>(Clock::now() - s).count());
    }
    std::sort(out.begin(), out.end());
    return out;
}

double pct(const std::vector<double>& v, double q) {
    if (v.empty()) return 0;
    return v[std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size())))];
}

double bulk_mbps(const Path& p, std::uint16_t origin_port, const std::string& host, std::uint64_t bytes) {
    std::vector<char> buf(256 * 1024);
    auto s = Clock::now();
    long long got = fetch(p, origin_port, host, "/bytes/" + std::to_string(bytes), buf);
    if (got != static_cast<long long>(bytes)) throw std::runtime_error(std::string("bulk download failed on the ") + p.name + " path");
    return static_cast<double>(bytes) / (1 << 20) / std::chrono::duration<double>(Clock::now() - s).count();
}

// HTTP/2: `streams` requests of 1 KB at a time on one connection, for `duration`; requests/s.
RateResult h2_multiplexed(const Path& p, std::uint16_t origin_port, const std::string& host, int streams,
                          std::chrono::milliseconds duration) {
    Connection c;
    if (!open_connection(p, origin_port, host, c) || !selected_h2(c.ssl.get()))
        throw std::runtime_error(std::string("no h2 connection on the ") + p.name + " path");
    bench::H2Client h2(c.ssl.get(), host + ":" + std::to_string(origin_port));
    long long requests = 0, failures = 0;
    const auto start = Clock::now();
    while (Clock::now() - start < duration) {
        if (h2.get("/1k.bin", streams) != 1024LL * streams) {
            ++failures;
            break;
        }
        requests += streams;
    }
    const double secs = std::chrono::duration<double>(Clock::now() - start).count();
    return {static_cast<double>(requests) / secs, failures};
}

std::string forging_name(long long i) { return "www.bench" + std::to_string(i) + ".example"; }

// Per-round figures of one path against the direct path measured in the same round (the
// machine is shared: a slow spell then hits both, and the ratio is the median of the rounds').
struct Rounds {
    std::vector<double> rates;
    std::vector<double> ratios;
    long long failures = 0;
    void add(const RateResult& r, const RateResult& direct) {
        rates.push_back(r.per_second);
        ratios.push_back(direct.per_second > 0 ? r.per_second / direct.per_second : 0);
        failures += r.failures;
    }
    std::string spread() const {
        auto [lo, hi] = std::minmax_element(ratios.begin(), ratios.end());
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.2f-%.2f", *lo, *hi);
        return buf;
    }
};

// CPU per connection of one path, by process: this one (the clients and the origin), the
// proxy-node and the ca-service.
struct CpuCost {
    std::vector<double> self_us, node_us, ca_us;
    std::string text(bool proxied, bool forging) const {
        char buf[160];
        if (!proxied) std::snprintf(buf, sizeof buf, "%.0f", bench::median(self_us));
        else if (!forging) std::snprintf(buf, sizeof buf, "%.0f + node %.0f", bench::median(self_us), bench::median(node_us));
        else
            std::snprintf(buf, sizeof buf, "%.0f + node %.0f + ca-service %.0f", bench::median(self_us),
                          bench::median(node_us), bench::median(ca_us));
        return buf;
    }
};

// Runs `phase` and adds its CPU per completed connection to `cost`.
RateResult metered(CpuCost& cost, int node_pid, int ca_pid, const std::function<RateResult()>& phase) {
    const bench::CpuMeter meter({0, node_pid, ca_pid});  // node_pid 0 (direct): that slot is unused
    const RateResult r = phase();
    if (const auto us = meter.us_per_op(r.per_second); !us.empty()) {
        cost.self_us.push_back(us[0]);
        if (node_pid != 0) cost.node_us.push_back(us[1]);
        cost.ca_us.push_back(us[2]);
    }
    return r;
}

// `clients` keep-alive connections each fetching `path` until `duration` passes; requests/s.
// `pace` > 0: at most that many requests/s in all (each client keeps its share).
RateResult keepalive_rate(const Path& p, std::uint16_t origin_port, const std::string& host, const std::string& path,
                          int clients, std::chrono::milliseconds duration, double pace = 0) {
    std::atomic<long long> done{0}, failed{0};
    const auto start = Clock::now();
    std::vector<std::thread> threads;
    for (int t = 0; t < clients; ++t)
        threads.emplace_back([&] {
            std::vector<char> buf(16384);
            auto c = std::make_unique<Connection>();
            bool open = false;
            const auto interval = std::chrono::duration_cast<Clock::duration>(
                std::chrono::duration<double>(pace > 0 ? clients / pace : 0.0));
            auto next = Clock::now();
            while (Clock::now() - start < duration) {
                if (pace > 0) {
                    next += interval;
                    std::this_thread::sleep_until(next);
                }
                if (!open) open = open_connection(p, origin_port, host, *c);
                if (open && get(*c, host, path, buf, true) >= 0) {
                    ++done;
                } else {
                    ++failed;
                    c = std::make_unique<Connection>();
                    open = false;
                }
            }
        });
    for (auto& t : threads) t.join();
    const double secs = std::chrono::duration<double>(Clock::now() - start).count();
    return {static_cast<double>(done.load()) / secs, failed.load()};
}

// --icap: inspection off, the rule set, the rule set plus ICAP; rounds interleaved.
struct IcapPaths {
    const Path* off;
    const Path* rules;
    const Path* icap;
    int off_pid, rules_pid, icap_pid;
    std::vector<int> engine_pids;  // c-icap's processes and clamd
};

int icap_comparison(const Options& o, const IcapPaths& paths, std::uint16_t origin_port) {
    const std::string host = "cached.bench.example";
    const std::string small = "/bytes/4096";
    const std::uint64_t bulk_bytes = std::min<std::uint64_t>(o.bulk_bytes, 256ULL << 20);
    struct Figures {
        std::vector<double> rps, node_us, engine_us, mbps, node_us_per_mb;
        std::vector<double> paced_node_us;  // the rule set at the ICAP path's rate
        long long failures = 0;
    };
    std::map<const Path*, Figures> f;
    const std::vector<std::pair<const Path*, int>> order = {
        {paths.off, paths.off_pid}, {paths.rules, paths.rules_pid}, {paths.icap, paths.icap_pid}};
    for (const auto& [p, pid] : order) keepalive_rate(*p, origin_port, host, small, o.clients, std::chrono::milliseconds(500));
    for (int round = 0; round < o.rounds; ++round)
        for (const auto& [p, pid] : order) {
            std::vector<int> pids{pid};
            pids.insert(pids.end(), paths.engine_pids.begin(), paths.engine_pids.end());
            const bench::CpuMeter meter(pids);
            const RateResult r = keepalive_rate(*p, origin_port, host, small, o.clients, o.phase);
            auto& fig = f[p];
            fig.rps.push_back(r.per_second);
            fig.failures += r.failures;
            if (const auto us = meter.us_per_op(r.per_second); !us.empty()) {
                fig.node_us.push_back(us[0]);
                double engine = 0;
                for (std::size_t i = 1; i < us.size(); ++i) engine += us[i];
                fig.engine_us.push_back(engine);
            }
        }
    // CPU per message falls with load (more work per wake-up): the rule set again at the
    // rate the ICAP path reached, for a same-load comparison.
    const double icap_rps = bench::median(f[paths.icap].rps);
    for (int round = 0; round < o.rounds; ++round) {
        const bench::CpuMeter meter({paths.rules_pid});
        const RateResult r = keepalive_rate(*paths.rules, origin_port, host, small, o.clients, o.phase, icap_rps);
        if (const auto us = meter.us_per_op(r.per_second); !us.empty()) f[paths.rules].paced_node_us.push_back(us[0]);
    }
    for (int round = 0; round < 2; ++round)
        for (const auto& [p, pid] : order) {
            const bench::CpuMeter meter({pid});
            const double mbps = bulk_mbps(*p, origin_port, host, bulk_bytes);
            auto& fig = f[p];
            fig.mbps.push_back(mbps);
            if (const auto us = meter.us_per_op(mbps); !us.empty()) fig.node_us_per_mb.push_back(us[0]);
        }
    for (const auto& [p, pid] : order) {
        const auto& fig = f[p];
        std::printf("icap    %-18s small %7.0f req/s (node %5.0f us/req, engine %5.0f us/req, failures %lld)   bulk %5.0f MB/s "
                    "(node %5.0f us/MB)\n",
                    p->name, bench::median(fig.rps), bench::median(fig.node_us),
                    p == paths.icap ? bench::median(fig.engine_us) : 0.0, fig.failures, bench::median(fig.mbps),
                    bench::median(fig.node_us_per_mb));
    }
    const auto& rules = f[paths.rules];
    const auto& icap = f[paths.icap];
    std::printf("icap    %-18s small at %.0f req/s (the ICAP path's rate): node %5.0f us/req\n", paths.rules->name, icap_rps,
                bench::median(rules.paced_node_us));
    std::printf("icap small_rps_ratio=%.2f small_cpu_ratio=%.2f small_cpu_ratio_same_rate=%.2f bulk_cpu_ratio=%.2f "
                "(icap / rules; %d rounds of %lld ms, %d clients, bulk %llu MB)\n",
                bench::median(icap.rps) / bench::median(rules.rps), bench::median(icap.node_us) / bench::median(rules.node_us),
                bench::median(icap.node_us) / bench::median(rules.paced_node_us),
                bench::median(icap.node_us_per_mb) / bench::median(rules.node_us_per_mb), o.rounds,
                static_cast<long long>(o.phase.count()), o.clients, static_cast<unsigned long long>(bulk_bytes >> 20));
    return 0;
}

}  // namespace

// --mail: messages per second straight to the MTA and through the node's listen.smtp, 4
// smtplib clients each sending `per_client` 100 KB messages in one STARTTLS session; the
// rate counts the transactions (each client's own time from its first MAIL to its last
// reply), not the clients' start-up.
template <typename StartProxy>
int mail_comparison(const Options& o, const std::filesystem::path& work, const std::filesystem::path& ca_dir,
                    const OriginCert& mx_cert, StartProxy& start_proxy) {
    const std::string mx = "cached.bench.example";
    const std::string tests = std::string(SPLITCA_SOURCE_DIR) + "/tests/integration/";
    write_cert_and_key(mx_cert, work / "mx.pem", work / "mx.key");
    std::filesystem::create_directories(work / "mail");
    testing_support::Child mta({"/usr/bin/python3", tests + "mail_server.py", "--listen", "127.0.0.1", "--port", "0",
                                "--maildir", (work / "mail").string(), "--hostname", mx, "--cert",
                                (work / "mx.pem").string(), "--key", (work / "mx.key").string(), "--max-size", "0",
                                "--port-file", (work / "mta.port").string()},
                               work / "mta.log");
    std::uint16_t mta_port = 0;
    for (auto deadline = Clock::now() + std::chrono::seconds(20); mta_port == 0; std::this_thread::sleep_for(std::chrono::milliseconds(50))) {
        const std::string text = testing_support::read_file(work / "mta.port");
        if (!text.empty()) mta_port = static_cast<std::uint16_t>(std::stoi(text));
        else if (!mta.running() || Clock::now() > deadline) throw std::runtime_error("the MTA did not start; see " + work.string());
    }
    const std::uint16_t smtp_port = testing_support::free_port();
    auto node = start_proxy("proxy-node-mail", testing_support::free_port(), testing_support::free_port(), "enabled = true\n",
                            "smtp = \"127.0.0.1:" + std::to_string(smtp_port) + "\"\n",
                            "[smtp]\nupstream = \"" + mx + ":" + std::to_string(mta_port) + "\"\n");
    for (auto deadline = Clock::now() + std::chrono::seconds(20); !testing_support::loopback_accepting(smtp_port);
         std::this_thread::sleep_for(std::chrono::milliseconds(50)))
        if (!node->running() || Clock::now() > deadline) throw std::runtime_error("the mail node did not start; see " + work.string());

    // 100 KB: a text part and a 72 KB binary attachment, base64 in 76-column lines.
    std::string attachment(72 * 1024, '\0');
    for (std::size_t i = 0; i < attachment.size(); ++i) attachment[i] = static_cast<char>((i * 2654435761u) >> 13);
    static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string b64;
    for (std::size_t i = 0; i + 2 < attachment.size(); i += 3) {
        const unsigned v = (static_cast<unsigned char>(attachment[i]) << 16) |
                           (static_cast<unsigned char>(attachment[i + 1]) << 8) | static_cast<unsigned char>(attachment[i + 2]);
        b64 += {k[v >> 18], k[(v >> 12) & 63], k[(v >> 6) & 63], k[v & 63]};
    }
    std::string message = "From: bench@client.example\r\nTo: rcpt@dest.example\r\nSubject: bench\r\nMIME-Version: 1.0\r\n"
                          "Content-Type: multipart/mixed; boundary=\"bb\"\r\n\r\n--bb\r\nContent-Type: text/plain\r\n\r\n";
    while (message.size() < 100 * 1024 - b64.size() - b64.size() / 76 * 2 - 200) message += "Lorem ipsum dolor sit amet.\r\n";
    message += "--bb\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"a.bin\"\r\n"
               "Content-Transfer-Encoding: base64\r\n\r\n";
    for (std::size_t i = 0; i < b64.size(); i += 76) message += b64.substr(i, 76) + "\r\n";
    message += "--bb--\r\n";
    std::ofstream(work / "message.eml", std::ios::binary) << message;

    constexpr int kClients = 4;
    const int per_client = 60;
    struct MailRate {
        double per_second = 0;
        long long failures = 0;
    };
    auto deliver = [&](std::uint16_t port, const std::filesystem::path& trust, int repeat) {
        std::vector<std::thread> threads;
        std::vector<double> seconds(kClients, 0);
        std::vector<long long> ok(kClients, 0), bad(kClients, 0);
        for (int c = 0; c < kClients; ++c)
            threads.emplace_back([&, c] {
                const auto r = testing_support::run({"/usr/bin/python3", tests + "mail_client.py", "--server",
                                                     "127.0.0.1:" + std::to_string(port), "--starttls", "--cafile",
                                                     trust.string(), "--sni", mx, "--repeat", std::to_string(repeat),
                                                     (work / "message.eml").string()},
                                                    {}, std::chrono::seconds(300));
                const auto j = nlohmann::json::parse(r.output.substr(0, r.output.find('\n')), nullptr, false);
                if (!j.is_object() || !j.contains("results")) {
                    bad[c] = repeat;
                    return;
                }
                for (const auto& res : j["results"]) ++(res.value("code", 0) == 250 ? ok[c] : bad[c]);
                seconds[c] = j.value("seconds", 0.0);
            });
        for (auto& t : threads) t.join();
        MailRate out;
        long long total = 0;
        for (int c = 0; c < kClients; ++c) {
            total += ok[c];
            out.failures += bad[c];
        }
        const double wall = *std::max_element(seconds.begin(), seconds.end());
        out.per_second = wall > 0 ? static_cast<double>(total) / wall : 0;
        return out;
    };
    const auto origin_root = work / "origin-root.pem", interception_root = ca_dir / "pki/root-ca.pem";
    deliver(mta_port, origin_root, 5);  // warm-up (and the node's leaf for the MX name)
    deliver(smtp_port, interception_root, 5);
    std::vector<double> direct_rates, node_rates, ratios, node_us;
    long long failures = 0;
    for (int round = 0; round < o.rounds; ++round) {
        const auto d = deliver(mta_port, origin_root, per_client);
        const double cpu_before = testing_support::process_cpu_seconds(node->pid());
        const auto n = deliver(smtp_port, interception_root, per_client);
        const double cpu = testing_support::process_cpu_seconds(node->pid()) - cpu_before;
        direct_rates.push_back(d.per_second);
        node_rates.push_back(n.per_second);
        ratios.push_back(d.per_second > 0 ? n.per_second / d.per_second : 0);
        node_us.push_back(cpu * 1e6 / (kClients * per_client));
        failures += d.failures + n.failures;
    }
    std::printf("mail    direct %8.1f msg/s   through the node %8.1f msg/s   (100 KB with an attachment, %d clients x %d "
                "messages, STARTTLS, medians of %d rounds; failures %lld; node CPU %.0f us per message)\n",
                bench::median(direct_rates), bench::median(node_rates), kClients, per_client, o.rounds, failures,
                bench::median(node_us));
    std::printf("mail ratio=%.2f\n", bench::median(ratios));
    return 0;
}

int main(int argc, char** argv) try {
    const Options o = parse(argc, argv);
    if (o.idle > 0) {
        // 10,000 idle connections take 2 descriptors each in the node (and 2 here: client and
        // origin side). Root may raise the hard limit; the nodes started below inherit it.
        const rlim_t want = static_cast<rlim_t>(o.idle) * 2 + 4096;
        rlimit nofile{};
        getrlimit(RLIMIT_NOFILE, &nofile);
        if (nofile.rlim_max < want) {
            rlimit raised{want, want};
            if (setrlimit(RLIMIT_NOFILE, &raised) != 0)
                std::fprintf(stderr, "proxy-bench: cannot raise the open-file limit to %llu (%s); --idle %d may fail\n",
                             static_cast<unsigned long long>(want), std::strerror(errno), o.idle);
        }
    }
    ::signal(SIGPIPE, SIG_IGN);
    if (o.transparent) {
        // Everything from here on (the CA, the origin, the nodes) runs in this namespace, and
        // the steering rule lives and dies with it.
        if (::unshare(CLONE_NEWNET) != 0)
            throw std::runtime_error(std::string("--transparent needs a network namespace of its own (root): ") +
                                     std::strerror(errno));
        if (testing_support::run({"ip", "link", "set", "lo", "up"}).exit_code != 0)
            throw std::runtime_error("--transparent: cannot bring up loopback in the new namespace");
    }
    auto ca = bench::BenchCa::open_or_create(o.ca_dir);
    const auto work = ca.dir / "proxy-bench";
    std::filesystem::remove_all(work);
    std::filesystem::create_directories(work);

    // Origin: one certificate per name, all under a private origin root the proxy trusts.
    std::printf("proxy-bench: generating %d origin certificates...\n", o.forging_names + 1);
    std::fflush(stdout);
    OriginPki pki;
    pki.write_root(work / "origin-root.pem");
    std::vector<OriginCert> certs;
    certs.reserve(static_cast<std::size_t>(o.forging_names) + 1);
    std::map<std::string, const OriginCert*> by_name;
    certs.push_back(pki.issue(valid_for({"cached.bench.example"})));
    by_name["cached.bench.example"] = &certs.back();
    for (int i = 0; i < o.forging_names; ++i) {
        certs.push_back(pki.issue(valid_for({forging_name(i)})));
        by_name[forging_name(i)] = &certs.back();
    }
    OriginServer origin(certs.front(), by_name, OriginOptions{1, "", o.tls12});
    // nginx for the HTTP/2 paths, with the cached name's certificate.
    NginxOrigin nginx(certs.front(), work / "nginx", origin.port());
    const std::uint64_t h2_bulk_bytes = std::min<std::uint64_t>(o.bulk_bytes, 256ULL << 20);
    nginx.put("index.html", "hello from nginx\n");
    nginx.put("1k.bin", std::string(1024, 'k'));
    write_origin_pattern(nginx.root() / "bulk.bin", h2_bulk_bytes);

    // ca-service: a private copy of the CA's configuration on its own port, without the
    // per-node rate limit (the benchmark measures the proxy, not the limiter).
    const std::uint16_t ca_port = testing_support::free_port();
    std::stringstream ss;
    ss << std::ifstream(ca.dir / "ca-service/ca-service.toml").rdbuf();
    std::string toml = ss.str();
    toml = std::regex_replace(toml, std::regex("address = \"[^\"]+\""), "address = \"127.0.0.1:" + std::to_string(ca_port) + "\"");
    toml = std::regex_replace(toml, std::regex("directory = \"[^\"]+/audit\""), "directory = \"" + (work / "audit").string() + "\"");
    toml = std::regex_replace(toml, std::regex("directory = \"[^\"]+/state\""), "directory = \"" + (work / "state").string() + "\"");
    toml = std::regex_replace(toml, std::regex("per_node_per_second = [0-9.]+"), "per_node_per_second = 1000000");
    toml = std::regex_replace(toml, std::regex("burst = [0-9.]+"), "burst = 1000000");
    std::ofstream(work / "ca-service.toml") << toml;
    testing_support::Child ca_service({std::string(SPLITCA_BIN_DIR) + "/ca-service", "--config", (work / "ca-service.toml").string()},
                       work / "ca-service.log");

    // proxy-node: node-1's identity; every bench name resolves to the origin via [upstream.hosts].
    // Two nodes: inspection off (the interception baseline) and the integrated inspector on
    // (EICAR plus one configured pattern, the whole bulk body scanned).
    // `listen_extra`: more [listen] lines; `tail`: tables appended at the end.
    auto start_proxy = [&](const std::string& name, std::uint16_t port, std::uint16_t mgmt, const std::string& inspection,
                           const std::string& listen_extra = "", const std::string& tail = "") {
        std::ofstream cfg(work / (name + ".toml"));
        cfg << "[node]\nname = \"node-1\"\n[listen]\nproxy = \"127.0.0.1:" << port
            << "\"\nmanagement = \"127.0.0.1:" << mgmt << "\"\n" << listen_extra << "[ca_service]\nurl = \"https://127.0.0.1:" << ca_port
            << "\"\nserver_ca = \"" << (ca.dir / "pki/service-ca.pem").string() << "\"\ncertificate = \""
            << (ca.dir / "nodes/node-1/node.pem").string() << "\"\nprivate_key = \""
            << (ca.dir / "nodes/node-1/node.key").string() << "\"\nconnections = 16\n[upstream]\nextra_ca = \""
            << (work / "origin-root.pem").string() << "\"\nsystem_trust = false\n[upstream.hosts]\n";
        for (const auto& [n, cert] : by_name) cfg << '"' << n << "\" = \"127.0.0.1\"\n";
        // The load generator is one client address: no per-client cap on it.
        cfg << "[limits]\nmax_connections_per_client = 1000000\n";
        cfg << "[log]\nconnections = \"" << (work / (name + "-connections.jsonl")).string() << "\"\n"
            // The node's default less loopback, where the origin listens (still checked on
            // every connection, as in production).
            << "[access]\ndenied_destinations = [\"0.0.0.0/8\", \"::/128\", \"169.254.0.0/16\", \"fe80::/10\", "
               "\"224.0.0.0/4\", \"ff00::/8\", \"255.255.255.255/32\"]\n"
            << "[inspection]\n" << inspection << tail;
        cfg.close();
        return std::make_unique<testing_support::Child>(
            std::vector<std::string>{std::string(SPLITCA_BIN_DIR) + "/proxy-node", "--config", (work / (name + ".toml")).string()},
            work / (name + ".log"));
    };
    const std::uint16_t proxy_port = testing_support::free_port(), mgmt_port = testing_support::free_port();
    const std::uint16_t inspect_port = testing_support::free_port(), inspect_mgmt_port = testing_support::free_port();
    const std::uint16_t transparent_port = testing_support::free_port();
    auto proxy = start_proxy("proxy-node", proxy_port, mgmt_port, "enabled = false\n",
                             o.transparent ? "transparent = \"127.0.0.1:" + std::to_string(transparent_port) + "\"\n" : "");
    auto inspecting = start_proxy("proxy-node-inspect", inspect_port, inspect_mgmt_port,
                                  "enabled = true\nmax_scan_bytes = " + std::to_string(o.bulk_bytes * 2) +
                                      "\n[inspection.patterns]\n\"bench-marker\" = \"hex:deadbeefcafe\"\n");
    auto direct_ctx = client_ctx(work / "origin-root.pem");
    auto proxy_ctx = client_ctx(ca.dir / "pki/root-ca.pem");
    const Path direct{"direct", direct_ctx.get(), 0};
    const Path via{"proxy", proxy_ctx.get(), proxy_port};
    const Path inspected{"proxy+inspection", proxy_ctx.get(), inspect_port};
    auto direct_h2_ctx = client_ctx(work / "origin-root.pem", true);
    auto proxy_h2_ctx = client_ctx(ca.dir / "pki/root-ca.pem", true);
    const Path direct_h2{"direct h2", direct_h2_ctx.get(), 0, true};
    const Path inspected_h2{"proxy+inspection h2", proxy_h2_ctx.get(), inspect_port, true};

    // Ready when a request through the proxy succeeds (this also caches the cached-path leaf).
    std::vector<char> buf(16384);
    for (auto deadline = Clock::now() + std::chrono::seconds(30);;) {
        if (fetch(via, origin.port(), "cached.bench.example", "/", buf) >= 0 &&
            fetch(inspected, origin.port(), "cached.bench.example", "/", buf) >= 0)
            break;
        if (!proxy->running() || !inspecting->running() || !ca_service.running() || Clock::now() > deadline)
            throw std::runtime_error("proxy-node or ca-service did not come up; see " + work.string());
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    std::printf("proxy-bench: %d clients, cached phase %lld ms, %d forging names, bulk %llu MB, on %u CPUs\n",
                o.clients, static_cast<long long>(o.phase.count()), o.forging_names,
                static_cast<unsigned long long>(o.bulk_bytes >> 20), std::thread::hardware_concurrency());

    auto one_name = [](long long) { return std::string("cached.bench.example"); };
    // Warm-up of both paths (page cache, allocator, CPU frequency).
    run_rate(direct, origin.port(), o.clients, one_name, 0, std::chrono::milliseconds(500));
    run_rate(via, origin.port(), o.clients, one_name, 0, std::chrono::milliseconds(500));
    run_rate(inspected, origin.port(), o.clients, one_name, 0, std::chrono::milliseconds(500));

    if (o.transparent) {
        // Connections from kTransparentSource to the origin go to the node instead, as a
        // network's policy routing and nftables rule would send them.
        const std::string rules = "table ip bench_steer {\n  chain output {\n    type nat hook output priority -100;\n"
                                  "    ip saddr " + std::string(kTransparentSource) + " tcp dport " +
                                  std::to_string(origin.port()) + " redirect to :" + std::to_string(transparent_port) +
                                  "\n  }\n}\n";
        std::ofstream(work / "steer.nft") << rules;
        const auto loaded = testing_support::run({"nft", "-f", (work / "steer.nft").string()});
        if (loaded.exit_code != 0) throw std::runtime_error("--transparent: nft -f failed: " + loaded.output);
        const Path transparent{"transparent", proxy_ctx.get(), 0, false, true};
        if (fetch(transparent, origin.port(), "cached.bench.example", "/", buf) < 0)
            throw std::runtime_error("--transparent: a fetch through the transparent listener failed; see " + work.string());
        run_rate(transparent, origin.port(), o.clients, one_name, 0, std::chrono::milliseconds(500));
        Rounds t_direct, t_connect, t_transparent;
        CpuCost c_direct, c_connect, c_transparent;
        for (int round = 0; round < o.rounds; ++round) {
            const auto d = metered(c_direct, 0, ca_service.pid(),
                                   [&] { return run_rate(direct, origin.port(), o.clients, one_name, 0, o.phase); });
            t_direct.add(d, d);
            t_connect.add(metered(c_connect, proxy->pid(), ca_service.pid(),
                                  [&] { return run_rate(via, origin.port(), o.clients, one_name, 0, o.phase); }),
                          d);
            t_transparent.add(metered(c_transparent, proxy->pid(), ca_service.pid(),
                                      [&] { return run_rate(transparent, origin.port(), o.clients, one_name, 0, o.phase); }),
                              d);
        }
        std::printf("cached  direct %8.0f conn/s   CONNECT %8.0f conn/s   transparent %8.0f conn/s   (medians of %d "
                    "rounds; ratio spread %s / %s; failures %lld/%lld/%lld)\n",
                    bench::median(t_direct.rates), bench::median(t_connect.rates), bench::median(t_transparent.rates),
                    o.rounds, t_connect.spread().c_str(), t_transparent.spread().c_str(), t_direct.failures,
                    t_connect.failures, t_transparent.failures);
        std::printf("CPU per connection (us, medians; clients and origin + proxy-node): direct %s, CONNECT %s, "
                    "transparent %s\n",
                    c_direct.text(false, false).c_str(), c_connect.text(true, false).c_str(),
                    c_transparent.text(true, false).c_str());
        std::printf("transparent cached_ratio=%.2f connect_ratio=%.2f\n", bench::median(t_transparent.ratios),
                    bench::median(t_connect.ratios));
        return 0;
    }

    if (o.mail) return mail_comparison(o, work, ca.dir, certs.front(), start_proxy);

    if (o.icap) {
        testing_support::ClamavIcap engine(work / "clamav");
        const std::uint16_t icap_port = testing_support::free_port(), icap_mgmt_port = testing_support::free_port();
        auto icap_node = start_proxy("proxy-node-icap", icap_port, icap_mgmt_port,
                                     "enabled = true\nmax_scan_bytes = " + std::to_string(o.bulk_bytes * 2) +
                                         "\n[inspection.patterns]\n\"bench-marker\" = \"hex:deadbeefcafe\"\n"
                                         "[icap.av]\nurl = \"" + engine.url() + "\"\n");
        const Path icap_path{"proxy+rules+icap", proxy_ctx.get(), icap_port};
        for (auto deadline = Clock::now() + std::chrono::seconds(30);
             fetch(icap_path, origin.port(), "cached.bench.example", "/", buf) < 0;) {
            if (!icap_node->running() || Clock::now() > deadline)
                throw std::runtime_error("the ICAP node did not come up; see " + work.string());
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        std::printf("proxy-bench --icap: c-icap virus_scan + clamd at %s\n", engine.url().c_str());
        return icap_comparison(o, {&via, &inspected, &icap_path, proxy->pid(), inspecting->pid(), icap_node->pid(),
                                   engine.pids()},
                               origin.port());
    }

    const auto handshakes_before = upstream_handshakes(mgmt_port);
    Rounds cached_direct, cached_proxy, cached_inspected;
    CpuCost cached_direct_cpu, cached_proxy_cpu, cached_inspected_cpu;
    const int ca_pid = ca_service.pid();
    for (int round = 0; round < o.rounds; ++round) {
        const auto d = metered(cached_direct_cpu, 0, ca_pid,
                               [&] { return run_rate(direct, origin.port(), o.clients, one_name, 0, o.phase); });
        cached_direct.add(d, d);
        cached_proxy.add(metered(cached_proxy_cpu, proxy->pid(), ca_pid,
                                 [&] { return run_rate(via, origin.port(), o.clients, one_name, 0, o.phase); }),
                         d);
        cached_inspected.add(metered(cached_inspected_cpu, inspecting->pid(), ca_pid,
                                     [&] { return run_rate(inspected, origin.port(), o.clients, one_name, 0, o.phase); }),
                             d);
    }
    std::printf("cached  direct %8.0f conn/s   proxy %8.0f conn/s   inspected %8.0f conn/s   (medians of %d rounds; "
                "ratio spread %s / %s; failures %lld/%lld/%lld)\n",
                bench::median(cached_direct.rates), bench::median(cached_proxy.rates), bench::median(cached_inspected.rates), o.rounds,
                cached_proxy.spread().c_str(), cached_inspected.spread().c_str(), cached_direct.failures,
                cached_proxy.failures, cached_inspected.failures);

    const auto handshakes_after = upstream_handshakes(mgmt_port);
    const long long resumed = handshakes_after.first - handshakes_before.first;
    const long long full = handshakes_after.second - handshakes_before.second;
    std::printf("upstream resumption on the cached path (origin TLS %s): %lld resumed, %lld full = %.1f%%\n",
                o.tls12 ? "1.2" : "1.3", resumed, full,
                resumed + full > 0 ? 100.0 * static_cast<double>(resumed) / static_cast<double>(resumed + full) : 0.0);

    const auto lat_direct = latencies(direct, origin.port(), "cached.bench.example", o.latency_samples);
    const auto lat_proxy = latencies(via, origin.port(), "cached.bench.example", o.latency_samples);
    std::printf("latency (sequential, cached path)  direct p50 %.2f ms p99 %.2f ms   proxy p50 %.2f ms p99 %.2f ms   "
                "added p99 %.2f ms\n",
                pct(lat_direct, 0.5), pct(lat_direct, 0.99), pct(lat_proxy, 0.5), pct(lat_proxy, 0.99),
                pct(lat_proxy, 0.99) - pct(lat_direct, 0.99));

    // Each round a fresh slice of the names, direct then through the proxy (which has not
    // seen them: every proxied connection needs a new certificate).
    Rounds forging_direct, forging_proxy;
    CpuCost forging_direct_cpu, forging_proxy_cpu;
    const long long slice = o.forging_names / o.rounds;
    for (int round = 0; round < o.rounds; ++round) {
        auto name = [&, first = round * slice](long long i) { return forging_name(first + i); };
        const auto d = metered(forging_direct_cpu, 0, ca_pid,
                               [&] { return run_rate(direct, origin.port(), o.clients, name, slice, {}); });
        forging_direct.add(d, d);
        forging_proxy.add(metered(forging_proxy_cpu, proxy->pid(), ca_pid,
                                  [&] { return run_rate(via, origin.port(), o.clients, name, slice, {}); }),
                          d);
    }
    std::printf("forging direct %8.0f conn/s   proxy %8.0f conn/s   (%lld distinct names per round, medians of %d "
                "rounds; ratio spread %s; failures %lld/%lld)\n",
                bench::median(forging_direct.rates), bench::median(forging_proxy.rates), slice, o.rounds,
                forging_proxy.spread().c_str(), forging_direct.failures, forging_proxy.failures);

    double bulk_direct = 0, bulk_proxy = 0, bulk_inspected = 0;
    for (int round = 0; round < 2; ++round) {  // best of two, interleaved
        bulk_direct = std::max(bulk_direct, bulk_mbps(direct, origin.port(), "cached.bench.example", o.bulk_bytes));
        bulk_proxy = std::max(bulk_proxy, bulk_mbps(via, origin.port(), "cached.bench.example", o.bulk_bytes));
        bulk_inspected =
            std::max(bulk_inspected, bulk_mbps(inspected, origin.port(), "cached.bench.example", o.bulk_bytes));
    }
    std::printf("bulk    direct %8.0f MB/s     proxy %8.0f MB/s     inspected %8.0f MB/s   (single stream, %llu MB, best of 2)\n",
                bulk_direct, bulk_proxy, bulk_inspected, static_cast<unsigned long long>(o.bulk_bytes >> 20));
    // Where the CPU goes, per connection: steadier than the rates when the machine is shared
    // (idle time does not count), though a slow spell raises it too.
    std::printf("CPU per connection (us, medians; clients and origin + proxy-node + ca-service): cached direct %s, "
                "proxy %s, inspected %s; forging direct %s, proxy %s\n",
                cached_direct_cpu.text(false, false).c_str(), cached_proxy_cpu.text(true, false).c_str(),
                cached_inspected_cpu.text(true, false).c_str(), forging_direct_cpu.text(false, false).c_str(),
                forging_proxy_cpu.text(true, true).c_str());

    // HTTP/2 against nginx, direct and through the inspecting node, rounds interleaved.
    run_rate(direct_h2, nginx.port(), o.clients, one_name, 0, std::chrono::milliseconds(500));
    run_rate(inspected_h2, nginx.port(), o.clients, one_name, 0, std::chrono::milliseconds(500));
    Rounds h2_cached_direct, h2_cached_proxy, h2_mux_direct, h2_mux_proxy;
    for (int round = 0; round < o.rounds; ++round) {
        const auto d = run_rate(direct_h2, nginx.port(), o.clients, one_name, 0, o.phase);
        h2_cached_direct.add(d, d);
        h2_cached_proxy.add(run_rate(inspected_h2, nginx.port(), o.clients, one_name, 0, o.phase), d);
        const auto md = h2_multiplexed(direct_h2, nginx.port(), "cached.bench.example", 100, o.phase);
        h2_mux_direct.add(md, md);
        h2_mux_proxy.add(h2_multiplexed(inspected_h2, nginx.port(), "cached.bench.example", 100, o.phase), md);
    }
    double h2_bulk_direct = 0, h2_bulk_proxy = 0;
    for (int round = 0; round < 2; ++round) {
        std::vector<char> unused;
        for (const Path* path : {&direct_h2, &inspected_h2}) {
            const auto s = Clock::now();
            if (fetch(*path, nginx.port(), "cached.bench.example", "/bulk.bin", unused) != static_cast<long long>(h2_bulk_bytes))
                throw std::runtime_error(std::string("h2 bulk download failed on the ") + path->name + " path");
            const double mbps = static_cast<double>(h2_bulk_bytes) / (1 << 20) /
                                std::chrono::duration<double>(Clock::now() - s).count();
            double& best = path == &direct_h2 ? h2_bulk_direct : h2_bulk_proxy;
            best = std::max(best, mbps);
        }
    }
    std::printf("h2 cached  direct %8.0f conn/s   inspected %8.0f conn/s   (medians of %d rounds; ratio spread %s; "
                "failures %lld/%lld)\n",
                bench::median(h2_cached_direct.rates), bench::median(h2_cached_proxy.rates), o.rounds,
                h2_cached_proxy.spread().c_str(), h2_cached_direct.failures, h2_cached_proxy.failures);
    std::printf("h2 multiplexed (100 streams of 1 KB on one connection)  direct %8.0f req/s   inspected %8.0f req/s   "
                "(medians of %d rounds; ratio spread %s; failures %lld/%lld)\n",
                bench::median(h2_mux_direct.rates), bench::median(h2_mux_proxy.rates), o.rounds,
                h2_mux_proxy.spread().c_str(), h2_mux_direct.failures, h2_mux_proxy.failures);
    std::printf("h2 bulk    direct %8.0f MB/s     inspected %8.0f MB/s   (single stream, %llu MB, best of 2)\n",
                h2_bulk_direct, h2_bulk_proxy, static_cast<unsigned long long>(h2_bulk_bytes >> 20));

    if (o.idle > 0) {
        // Memory: o.idle intercepted connections (TLS on both sides) idle after one request,
        // and the cached rate while they are held, against the rate just before.
        rlimit nofile{};
        getrlimit(RLIMIT_NOFILE, &nofile);
        nofile.rlim_cur = nofile.rlim_max;
        setrlimit(RLIMIT_NOFILE, &nofile);
        // Each node in turn (inspection off, then on: the default), the other one idle.
        auto idle_phase = [&](const Path& path, testing_support::Child& node, std::uint16_t mgmt) {
            const RateResult rate_before = run_rate(path, origin.port(), o.clients, one_name, 0, o.phase);
            const long rss_before = rss_kib(node.pid());
            long long failed = 0;
            const auto held = hold_idle(path, origin.port(), "cached.bench.example", o.idle, o.clients, failed);
            std::this_thread::sleep_for(std::chrono::milliseconds(500));
            const long rss_held = rss_kib(node.pid());
            const RateResult rate_held = run_rate(path, origin.port(), o.clients, one_name, 0, o.phase);
            // What the node refused meanwhile, by reason (an operator's first question when the
            // held phase shows failures).
            const auto metrics = testing_support::run(
                {"curl", "-s", "--max-time", "5", "http://127.0.0.1:" + std::to_string(mgmt) + "/metrics"});
            std::string refusals;
            std::istringstream lines(metrics.output);
            for (std::string line; std::getline(lines, line);)
                if (line.rfind("proxy_refusals_total{", 0) == 0 && line.substr(line.rfind(' ') + 1) != "0")
                    refusals += " " + line.substr(std::string("proxy_refusals_total").size());
            if (!refusals.empty()) std::printf("idle    %s node refusals:%s\n", path.name, refusals.c_str());
            const double per_connection_kib =
                held.empty() ? 0.0 : static_cast<double>(rss_held - rss_before) / static_cast<double>(held.size());
            std::printf("idle    %s: %zu intercepted connections held (%lld failed): node RSS %ld -> %ld MiB, %.1f KiB "
                        "per connection; cached rate meanwhile %.0f conn/s, before %.0f (ratio %.2f, failures %lld)\n",
                        path.name, held.size(), failed, rss_before / 1024, rss_held / 1024, per_connection_kib,
                        rate_held.per_second, rate_before.per_second,
                        rate_before.per_second > 0 ? rate_held.per_second / rate_before.per_second : 0,
                        rate_held.failures);
        };
        idle_phase(via, *proxy, mgmt_port);
        idle_phase(inspected, *inspecting, inspect_mgmt_port);
    }
    std::printf("ratio cached=%.2f forging=%.2f bulk=%.2f bulk_inspected=%.2f cached_inspected=%.2f h2_cached=%.2f "
                "h2_bulk=%.2f h2_multiplexed=%.2f\n",
                bench::median(cached_proxy.ratios), bench::median(forging_proxy.ratios), bulk_proxy / bulk_direct,
                bulk_inspected / bulk_direct, bench::median(cached_inspected.ratios),
                bench::median(h2_cached_proxy.ratios), h2_bulk_proxy / h2_bulk_direct,
                bench::median(h2_mux_proxy.ratios));
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "proxy-bench: %s\n", e.what());
    return 1;
}
