// A real browser through the node: headless Chromium (Debian's chromium), trusting the
// interception root in an NSS database of the test's own, shows the node's explanation page
// for refused upstreams. Run inside a network namespace of its own (see proxy.cmake), where
// only loopback exists: a name the node must look up in DNS fails there at once, and nothing
// leaves the machine.

#include "proxy_harness.hpp"
#include "support/nginx_origin.hpp"
#include "support/origin_pki.hpp"
#include "support/origin_server.hpp"
#include "websocket_peer.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

using namespace testing_support;
using Catch::Matchers::ContainsSubstring;

namespace {

std::filesystem::path work_dir(const std::string& name) { return make_temp_dir("splitca-browser-" + name); }

// A Chromium profile (user data dir and NSS database) that trusts `root` for TLS servers.
class Browser {
public:
    explicit Browser(const std::filesystem::path& root) : home_(work_dir("home")) {
        const auto nssdb = home_ / ".pki/nssdb";
        std::filesystem::create_directories(nssdb);
        auto created = run({"certutil", "-N", "-d", "sql:" + nssdb.string(), "--empty-password"});
        if (created.exit_code != 0) throw std::runtime_error("certutil -N: " + created.output);
        auto added = run({"certutil", "-A", "-d", "sql:" + nssdb.string(), "-n", "splitca interception root", "-t",
                          "C,,", "-i", root.string()});
        if (added.exit_code != 0) throw std::runtime_error("certutil -A: " + added.output);
    }
    ~Browser() { std::filesystem::remove_all(home_); }

    // The DOM Chromium ends up with for `url` through `proxy` (--dump-dom), with its stderr.
    RunResult dump_dom(const ProxyNode& proxy, const std::string& url) const {
        return run({"chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--user-data-dir=" + (home_ / "profile").string(), "--proxy-server=" + proxy.proxy_url(),
                    // Chromium sends loopback names around a proxy unless told otherwise.
                    "--proxy-bypass-list=<-loopback>", "--dump-dom", url},
                   {{"HOME", home_.string()}}, std::chrono::seconds(60));
    }

private:
    std::filesystem::path home_;
};

}  // namespace

TEST_CASE("Chromium shows the explanation page for an expired, a self-signed and an unresolvable origin, 10 of 10",
          "[proxy][browser]") {
    const TestCa& ca = TestCa::shared();
    OriginPki pki;
    CertSpec expired = valid_for({"expired.test.example"});
    expired.not_before_offset = std::chrono::seconds(-10 * 86400);
    expired.not_after_offset = std::chrono::seconds(-86400);
    CertSpec self = valid_for({"selfsigned.test.example"});
    self.issuer = IssuerKind::self_signed;
    const OriginCert good = pki.issue(valid_for({"good.test.example"}));
    const OriginCert expired_cert = pki.issue(expired);
    const OriginCert self_cert = pki.issue(self);
    OriginServer origin(good, {{"expired.test.example", &expired_cert}, {"selfsigned.test.example", &self_cert}});
    const auto dir = work_dir("origin");
    pki.write_root(dir / "origin-root.pem");
    CaService service(ca, work_dir("ca"));
    ProxyOptions o;
    for (auto n : {"good.test.example", "expired.test.example", "selfsigned.test.example"}) o.hosts[n] = "127.0.0.1";
    ProxyNode proxy(ca, service.port(), work_dir("node"), dir / "origin-root.pem", o);
    Browser browser(ca.dir / "pki/root-ca.pem");
    const std::string port = std::to_string(origin.port());

    // The browser trusts the root and reaches a good origin: the page is the origin's.
    auto ok = browser.dump_dom(proxy, "https://good.test.example:" + port + "/");
    INFO(ok.output << proxy.log());
    REQUIRE_THAT(ok.output, ContainsSubstring("hello from good.test.example"));

    struct Case {
        std::string host, reason;
    };
    for (const Case& c : {Case{"expired.test.example", "expired"}, Case{"selfsigned.test.example", "self_signed"},
                          Case{"unresolvable.test.example", "dns_failed"}}) {
        int shown = 0;
        std::string last;
        for (int i = 0; i < 10; ++i) {
            auto r = browser.dump_dom(proxy, "https://" + c.host + ":" + port + "/");
            const bool page = r.output.find("The proxy did not connect you to " + c.host) != std::string::npos &&
                              r.output.find("<code>" + c.reason + "</code>") != std::string::npos;
            shown += page ? 1 : 0;
            if (!page) last = r.output;
        }
        INFO(c.host << ": a run without the page printed:\n" << last << proxy.log());
        CHECK(shown == 10);
        CHECK(proxy.last_record(c.host).value("reason", "") == c.reason);
    }
}

TEST_CASE("Chromium's WebSockets through the node (wss:// and ws://): a clean message echoed, EICAR closed with 1008, "
          "5 of 5",
          "[proxy][browser][websocket]") {
    const TestCa& ca = TestCa::shared();
    OriginPki pki;
    const auto dir = work_dir("ws");
    pki.write_root(dir / "origin-root.pem");
    const OriginCert cert = pki.issue(valid_for({"ws.test.example"}));
    WebSocketServer tls_server(&cert, dir / "server");
    WebSocketServer plain_server(nullptr, dir / "plain-server");
    CaService service(ca, work_dir("ws-ca"));
    ProxyOptions o;
    o.hosts["ws.test.example"] = "127.0.0.1";
    ProxyNode proxy(ca, service.port(), work_dir("ws-node"), dir / "origin-root.pem", o);
    Browser browser(ca.dir / "pki/root-ca.pem");
    // The clean message comes back (22 characters) and closes normally; the EICAR one is
    // never echoed: the node closes with 1008 (policy violation), which the page sees.
    const std::string want = "results clean:echo:22 clean:close:1000 eicar:close:1008";
    struct Case {
        std::string url;
        const WebSocketServer* server;
    };
    for (const Case& c : {Case{"https://ws.test.example:" + std::to_string(tls_server.port()) + "/page", &tls_server},
                          Case{"http://ws.test.example:" + std::to_string(plain_server.port()) + "/page", &plain_server}}) {
        INFO(c.url);
        int ok = 0;
        std::string last;
        for (int i = 0; i < 5; ++i) {
            auto r = browser.dump_dom(proxy, c.url);
            if (r.output.find(want) != std::string::npos) ++ok;
            else last = r.output;
        }
        INFO("a run without the outcome printed:\n" << last << proxy.log() << c.server->log());
        CHECK(ok == 5);
        CHECK(c.server->received().find("text 22 ") != std::string::npos);
        CHECK(c.server->received().find("text 68 ") == std::string::npos);
    }
    proxy.settle();
    int blocked = 0;
    for (const auto& rec : proxy.records())
        if (rec.value("host", "") == "ws.test.example" && rec.value("rule", "") == "eicar" &&
            rec.value("detail", "").find("websocket text message from the client") != std::string::npos)
            ++blocked;
    CHECK(blocked == 10);
}

TEST_CASE("Chromium loads an HTTP/2 page and its script from nginx through the node, h2 on both sides, 5 of 5",
          "[proxy][browser][h2]") {
    const TestCa& ca = TestCa::shared();
    OriginPki pki;
    const auto dir = work_dir("h2");
    pki.write_root(dir / "origin-root.pem");
    const OriginCert cert = pki.issue(valid_for({"h2.test.example"}));
    OriginServer upload_backend(cert);
    NginxOrigin nginx(cert, dir / "nginx", upload_backend.port());
    // The script is a second stream; what it writes shows it arrived whole.
    nginx.put("index.html",
              "<!DOCTYPE html><html><body><p>page over h2</p><p id=\"s\"></p>"
              "<script src=\"/app.js\"></script></body></html>\n");
    nginx.put("app.js", "// " + std::string(20000, 'x') + "\ndocument.getElementById('s').textContent = 'script ran';\n");
    CaService service(ca, work_dir("h2-ca"));
    ProxyOptions o;
    o.hosts["h2.test.example"] = "127.0.0.1";
    ProxyNode proxy(ca, service.port(), work_dir("h2-node"), dir / "origin-root.pem", o);
    Browser browser(ca.dir / "pki/root-ca.pem");
    const std::string url = "https://h2.test.example:" + std::to_string(nginx.port()) + "/index.html";
    int ok = 0;
    std::string last;
    for (int i = 0; i < 5; ++i) {
        auto r = browser.dump_dom(proxy, url);
        if (r.output.find("page over h2") != std::string::npos && r.output.find("script ran") != std::string::npos) ++ok;
        else last = r.output;
    }
    INFO("a run without the page printed:\n" << last << proxy.log());
    CHECK(ok == 5);
    proxy.settle();
    int h2 = 0;
    for (const auto& rec : proxy.records())
        if (rec.value("host", "") == "h2.test.example" && rec["client_tls"].value("alpn", "") == "h2" &&
            rec["upstream_tls"].value("alpn", "") == "h2" && rec.value("reason", "") == "none")
            ++h2;
    CHECK(h2 >= 5);
}
