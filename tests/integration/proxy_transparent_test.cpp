// Transparent interception (listen.transparent): a client, the node and a server each in a
// network namespace of the test's own (support/netns_lab), the client's HTTPS steered to the
// node by an nftables redirect rule in the node's namespace, curl as the client, a Python
// HTTPS file server as the origin. Nothing leaves the namespaces; they are removed at the
// end, also when a check fails.

#include "proxy_harness.hpp"
#include "support/bodies.hpp"
#include "support/digest.hpp"
#include "support/netns_lab.hpp"
#include "support/origin_pki.hpp"

#include "inspect/rule_set.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <fstream>
#include <thread>

using namespace testing_support;
using Catch::Matchers::ContainsSubstring;
using Json = nlohmann::json;

namespace {

constexpr const char* kHost = "shop.transparent.example";

std::filesystem::path work_dir(const std::string& name) { return make_temp_dir("splitca-transparent-" + name); }

// The whole set-up: the lab, the rule that steers the client's port 443 to the node's
// transparent listener, the ca-service and the node in the node's namespace, the origin in
// the server's.
struct Setup {
    const TestCa& ca = TestCa::shared();
    NetnsLab lab;
    OriginPki pki;
    std::filesystem::path dir = work_dir("setup");
    std::uint16_t transparent_port = free_port();
    std::unique_ptr<CaService> service;
    std::unique_ptr<Child> origin;
    std::string big = pattern_body(3 << 20);

    // `tproxy`: steered by an nftables tproxy rule (the packets keep their destination; policy
    // routing delivers them locally) instead of a NAT redirect.
    explicit Setup(const std::string& tag, bool tproxy = false) : lab(tag) {
        const std::string port = std::to_string(transparent_port);
        if (tproxy) {
            lab.nft("table ip steer {\n"
                    "  chain prerouting {\n"
                    "    type filter hook prerouting priority mangle;\n"
                    "    iifname \"" + lab.node_client_if() + "\" tcp dport 443 tproxy to :" + port + " meta mark set 1 accept\n"
                    "  }\n"
                    "}\n");
            lab.in_node({"ip", "rule", "add", "fwmark", "1", "lookup", "100"});
            lab.in_node({"ip", "route", "add", "local", "0.0.0.0/0", "dev", "lo", "table", "100"});
        } else {
            lab.nft("table ip steer {\n"
                    "  chain prerouting {\n"
                    "    type nat hook prerouting priority dstnat;\n"
                    "    iifname \"" + lab.node_client_if() + "\" tcp dport 443 redirect to :" + port + "\n"
                    "  }\n"
                    "}\n");
        }
        pki.write_root(dir / "origin-root.pem");
        const auto cert = pki.issue(valid_for({kHost}));
        write_cert_and_key(cert, dir / "origin.pem", dir / "origin.key");
        std::filesystem::create_directories(dir / "www");
        std::ofstream(dir / "www/big.bin", std::ios::binary) << big;
        std::ofstream(dir / "www/small.txt") << "a small page\n";
        std::ofstream(dir / "www/eicar.com") << proxy::inspect::eicar_test_string();
        std::vector<std::string> argv = NetnsLab::in(lab.server());
        argv.insert(argv.end(), {kPythonPath, (std::filesystem::path(SPLITCA_SOURCE_DIR) / "tests/integration/file_origin.py").string(),
                                 NetnsLab::kServerAddr, "443", (dir / "origin.pem").string(), (dir / "origin.key").string(),
                                 (dir / "www").string()});
        origin = std::make_unique<Child>(argv, dir / "origin.log");
        std::vector<std::string> probe = NetnsLab::in(lab.server());
        probe.insert(probe.end(), {"curl", "-sk", "--max-time", "2", "-o", "/dev/null", "https://" + std::string(NetnsLab::kServerAddr) + "/small.txt"});
        bool up = false;
        for (int i = 0; i < 200 && !(up = run(probe).exit_code == 0); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        if (!up) throw std::runtime_error("the origin did not start:\n" + read_file(dir / "origin.log"));
        ServiceOptions so;
        so.netns = lab.node();
        service = std::make_unique<CaService>(ca, work_dir("ca"), so);
    }
    ~Setup() {
        origin.reset();
        service.reset();
    }

    std::unique_ptr<ProxyNode> node(const std::string& name, const std::string& transparent_table = "") const {
        return node_with(name, transparent_table);
    }
    std::unique_ptr<ProxyNode> node_with(const std::string& name, const std::string& transparent_table) const {
        ProxyOptions o;
        o.netns = lab.node();
        o.listen_extra = "transparent = \"0.0.0.0:" + std::to_string(transparent_port) + "\"\n";
        o.sections = transparent_table;
        return std::make_unique<ProxyNode>(ca, service->port(), work_dir(name), dir / "origin-root.pem", o);
    }
    std::filesystem::path root() const { return ca.dir / "pki/root-ca.pem"; }

    // curl in the client's namespace, with no proxy configured; `name` resolved to the
    // server's address.
    CurlResult client(const std::string& url, const std::vector<std::string>& extra = {}) const {
        auto tmp = make_temp_dir("splitca-transparent-curl");
        std::vector<std::string> argv = NetnsLab::in(lab.client());
        argv.insert(argv.end(), {"curl", "-sS", "--max-time", "30", "--noproxy", "*", "--resolve",
                                 std::string(kHost) + ":443:" + NetnsLab::kServerAddr, "--resolve",
                                 std::string("other.transparent.example:443:") + NetnsLab::kServerAddr, "-o",
                                 (tmp / "body").string(), "-w", "\n%{http_code}"});
        argv.insert(argv.end(), extra.begin(), extra.end());
        argv.push_back(url);
        auto r = run(argv, {}, std::chrono::seconds(60));
        CurlResult out;
        out.exit_code = r.exit_code;
        out.output = r.output;
        const auto nl = r.output.rfind('\n');
        try {
            out.status = std::stoi(r.output.substr(nl + 1));
        } catch (...) {
            out.status = 0;
        }
        out.body = read_file(tmp / "body");
        std::filesystem::remove_all(tmp);
        return out;
    }

    static constexpr const char* kPythonPath = "/usr/bin/python3";
};

Json last_record(const ProxyNode& p) {
    p.settle();
    for (int i = 0; i < 100; ++i) {
        auto all = p.records();
        if (!all.empty()) return all.back();
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return nullptr;
}

}  // namespace

TEST_CASE("transparent HTTPS: steered by nftables, intercepted by the SNI, validated, inspected, logged",
          "[proxy][transparent][netns]") {
    const std::string why = NetnsLab::unavailable();
    if (!why.empty()) SKIP(why);
    Setup s("tra");
    auto p = s.node("node");

    // Byte-identical, through a certificate the client trusts only as the interception
    // root's (it has no other anchor), with no proxy configured.
    auto before = p->record_count(kHost);
    auto r = s.client("https://" + std::string(kHost) + "/big.bin", {"--cacert", s.root().string()});
    INFO(r.output << p->log());
    CHECK(r.status == 200);
    CHECK(r.body.size() == s.big.size());
    CHECK(sha256_hex(r.body) == sha256_hex(s.big));
    auto rec = p->record_after(kHost, before);
    REQUIRE(rec.is_object());
    CHECK(rec["decision"] == "intercepted");
    CHECK(rec["mode"] == "transparent");
    CHECK(rec.value("target", "") == std::string(NetnsLab::kServerAddr) + ":443");
    CHECK(rec.value("client", "").rfind(NetnsLab::kClientAddr, 0) == 0);

    // Inspection as for CONNECT.
    r = s.client("https://" + std::string(kHost) + "/eicar.com", {"--cacert", s.root().string()});
    CHECK(r.status == 403);
    CHECK(last_record(*p).value("rule", "") == "eicar");

    // The upstream is checked against the name the client asked for, not trusted for
    // being at the address the client went to: a name that server has no certificate for
    // gets the explanation page.
    r = s.client("https://other.transparent.example/small.txt", {"--cacert", s.root().string()});
    CHECK(r.status == 502);
    rec = last_record(*p);
    CHECK(rec.value("reason", "") == "hostname_mismatch");
    CHECK(rec["mode"] == "transparent");

    // No SNI (an address in the URL): refused by default, with a TLS alert, logged.
    r = s.client("https://" + std::string(NetnsLab::kServerAddr) + "/small.txt", {"--cacert", s.root().string()});
    CHECK(r.exit_code != 0);
    rec = last_record(*p);
    CHECK(rec.value("reason", "") == "no_sni");
    CHECK(rec["decision"] == "blocked");

    // Straight to the transparent listener, not steered: the node would relay to itself.
    r = s.client("https://" + std::string(NetnsLab::kNodeClientSide) + ":" + std::to_string(s.transparent_port) + "/",
                 {"-k"});
    CHECK(r.exit_code != 0);
    rec = last_record(*p);
    CHECK(rec.value("reason", "") == "destination_loop");

    auto m = p->mgmt_get("/metrics");
    CHECK_THAT(m.output, ContainsSubstring("no_sni"));
    CHECK(p->child().running());

    // transparent.no_sni = "tunnel": relayed without decrypting, to the original destination.
    p.reset();
    auto tunnel = s.node("tunnel", "[transparent]\nno_sni = \"tunnel\"\n");
    r = s.client("https://" + std::string(NetnsLab::kServerAddr) + "/small.txt", {"-k"});
    CHECK(r.status == 200);
    CHECK(r.body == "a small page\n");
    rec = last_record(*tunnel);
    CHECK(rec["decision"] == "bypassed");
    CHECK_THAT(rec.value("detail", ""), ContainsSubstring("no SNI"));
}

TEST_CASE("transparent HTTPS steered by nftables tproxy (IP_TRANSPARENT listener, original destination kept)",
          "[proxy][transparent][netns]") {
    const std::string why = NetnsLab::unavailable();
    if (!why.empty()) SKIP(why);
    Setup s("tpx", true);
    auto p = s.node("tproxy", "[transparent]\ncapture = \"tproxy\"\n");
    const auto before = p->record_count(kHost);
    auto r = s.client("https://" + std::string(kHost) + "/big.bin", {"--cacert", s.root().string()});
    INFO(r.output << p->log());
    CHECK(r.status == 200);
    CHECK(sha256_hex(r.body) == sha256_hex(s.big));
    auto rec = p->record_after(kHost, before);
    REQUIRE(rec.is_object());
    CHECK(rec["decision"] == "intercepted");
    CHECK(rec["mode"] == "transparent");
    CHECK(rec.value("target", "") == std::string(NetnsLab::kServerAddr) + ":443");
}

TEST_CASE("[transparent] configuration is strict", "[proxy][transparent][config]") {
    const TestCa& ca = TestCa::shared();
    const auto dir = work_dir("config");
    OriginPki pki;
    pki.write_root(dir / "origin-root.pem");
    auto check = [&](const std::string& listen_extra, const std::string& table, const std::string& words) {
        ProxyOptions o;
        o.listen_extra = listen_extra;
        o.sections = table;
        CAPTURE(listen_extra, table);
        try {
            ProxyNode p(ca, 1, work_dir("bad"), dir / "origin-root.pem", o);
            FAIL("the node started");
        } catch (const std::runtime_error& e) {
            CHECK_THAT(std::string(e.what()), ContainsSubstring(words));
        }
    };
    check("transparent = \"127.0.0.1:x\"\n", "", "listen.transparent");
    check("transparent = \"0.0.0.0:15443\"\n", "[transparent]\ncapture = \"nat\"\n", "transparent.capture");
    check("transparent = \"0.0.0.0:15443\"\n", "[transparent]\nno_sni = \"allow\"\n", "transparent.no_sni");
    check("", "[transparent]\ncolour = 1\n", "colour");
}
