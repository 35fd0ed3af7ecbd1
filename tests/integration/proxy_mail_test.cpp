// E-mail through the node (mail/smtp_relay.hpp): the real proxy-node and ca-service, a real
// MTA (python3-aiosmtpd, tests/integration/mail_server.py) with STARTTLS under a
// certificate of the test's origin root, swaks and Python's smtplib
// (tests/integration/mail_client.py) as clients. On loopback for listen.smtp; in network
// namespaces of the test's own (support/netns_lab) for transparent interception of port 25.

#include "proxy_harness.hpp"
#include "support/bodies.hpp"
#include "support/clamav_icap.hpp"
#include "support/netns_lab.hpp"
#include "support/origin_pki.hpp"

#include "config/node_config.hpp"
#include "inspect/rule_set.hpp"
#include "mail/smtp_relay.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <fstream>
#include <regex>
#include <thread>

using namespace testing_support;
using Catch::Matchers::ContainsSubstring;
using Json = nlohmann::json;

namespace {

constexpr const char* kMx = "mx.mail.example";
constexpr const char* kPython = "/usr/bin/python3";

std::filesystem::path work_dir(const std::string& name) { return make_temp_dir("splitca-mail-" + name); }
std::string script(const char* name) { return (std::filesystem::path(SPLITCA_SOURCE_DIR) / "tests/integration" / name).string(); }

// The MTA: delivers each message to a directory, `n.eml` with its content as received.
class Mta {
public:
    struct Options {
        std::string listen = "127.0.0.1";
        std::uint16_t port = 0;
        std::string netns;
        bool starttls = true;
        std::string hostname = kMx;
        bool chunking = false;  // CHUNKING / BDAT
    };
    Mta(const std::filesystem::path& dir, const std::filesystem::path& cert, const std::filesystem::path& key,
        const Options& o)
        : dir_(dir) {
        std::filesystem::create_directories(dir_ / "mail");
        std::vector<std::string> argv;
        if (!o.netns.empty()) argv = NetnsLab::in(o.netns);
        argv.insert(argv.end(), {kPython, script("mail_server.py"), "--listen", o.listen, "--port", std::to_string(o.port),
                                 "--maildir", (dir_ / "mail").string(), "--hostname", o.hostname, "--port-file",
                                 (dir_ / "port").string()});
        if (o.starttls) argv.insert(argv.end(), {"--cert", cert.string(), "--key", key.string()});
        else argv.emplace_back("--no-starttls");
        if (o.chunking) argv.emplace_back("--chunking");
        child_ = std::make_unique<Child>(argv, dir_ / "mta.log");
        for (int i = 0; i < 400 && port_ == 0; ++i) {
            const std::string text = read_file(dir_ / "port");
            if (!text.empty()) port_ = static_cast<std::uint16_t>(std::stoi(text));
            else if (!child_->running()) break;
            else std::this_thread::sleep_for(std::chrono::milliseconds(25));
        }
        if (port_ == 0) throw std::runtime_error("the MTA did not start:\n" + read_file(dir_ / "mta.log"));
    }
    std::uint16_t port() const { return port_; }
    // Message n as delivered ("" until it is there).
    std::string message(int n) const { return read_file(dir_ / "mail" / (std::to_string(n) + ".eml")); }
    Json envelope(int n) const { return Json::parse(read_file(dir_ / "mail" / (std::to_string(n) + ".json")), nullptr, false); }
    std::size_t delivered() const {
        std::size_t n = 0;
        for (const auto& e : std::filesystem::directory_iterator(dir_ / "mail"))
            if (e.path().extension() == ".eml") ++n;
        return n;
    }
    // Waits (at most 10 s) for message n.
    std::string wait_for(int n) const {
        for (int i = 0; i < 400; ++i) {
            std::string m = message(n);
            if (!m.empty()) return m;
            std::this_thread::sleep_for(std::chrono::milliseconds(25));
        }
        return {};
    }
    std::string log() const { return read_file(dir_ / "mta.log"); }

private:
    std::filesystem::path dir_;
    std::unique_ptr<Child> child_;
    std::uint16_t port_ = 0;
};

// A message with a text part and a base64 attachment.
std::string message_with_attachment(const std::string& attachment, const std::string& subject) {
    std::string b64;
    {
        static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        std::size_t i = 0;
        for (; i + 2 < attachment.size(); i += 3) {
            const unsigned v = (static_cast<unsigned char>(attachment[i]) << 16) |
                               (static_cast<unsigned char>(attachment[i + 1]) << 8) | static_cast<unsigned char>(attachment[i + 2]);
            b64 += {k[v >> 18], k[(v >> 12) & 63], k[(v >> 6) & 63], k[v & 63]};
        }
        if (i + 1 == attachment.size()) {
            const unsigned v = static_cast<unsigned char>(attachment[i]) << 16;
            b64 += {k[v >> 18], k[(v >> 12) & 63], '=', '='};
        } else if (i + 2 == attachment.size()) {
            const unsigned v = (static_cast<unsigned char>(attachment[i]) << 16) | (static_cast<unsigned char>(attachment[i + 1]) << 8);
            b64 += {k[v >> 18], k[(v >> 12) & 63], k[(v >> 6) & 63], '='};
        }
    }
    std::string wrapped;
    for (std::size_t i = 0; i < b64.size(); i += 76) wrapped += b64.substr(i, 76) + "\r\n";
    return "From: sender@client.example\r\nTo: rcpt@dest.example\r\nSubject: " + subject +
           "\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
           "preamble\r\n--b1\r\nContent-Type: text/plain\r\n\r\nSee the attachment.\r\n"
           ".a line that starts with a dot\r\n..and one with two\r\n"
           "--b1\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"f.bin\"\r\n"
           "Content-Transfer-Encoding: base64\r\n\r\n" +
           wrapped + "--b1--\r\n";
}

struct MailSetup {
    const TestCa& ca = TestCa::shared();
    OriginPki pki;
    std::filesystem::path dir;
    std::unique_ptr<CaService> service;

    explicit MailSetup(const std::string& tag, const std::string& netns = "") : dir(work_dir(tag)) {
        pki.write_root(dir / "origin-root.pem");
        write_cert_and_key(pki.issue(valid_for({kMx})), dir / "mx.pem", dir / "mx.key");
        CertSpec expired = valid_for({"old.mail.example"});
        expired.not_before_offset = std::chrono::seconds(-40 * 86400);
        expired.not_after_offset = std::chrono::seconds(-86400);
        write_cert_and_key(pki.issue(expired), dir / "old.pem", dir / "old.key");
        ServiceOptions so;
        so.netns = netns;
        service = std::make_unique<CaService>(ca, work_dir(tag + "-ca"), so);
    }
    std::unique_ptr<Mta> mta(const std::string& name, const Mta::Options& o, const std::string& cert = "mx") const {
        return std::make_unique<Mta>(work_dir(name), dir / (cert + ".pem"), dir / (cert + ".key"), o);
    }
    // A node whose listen.smtp relays to `upstream` ("name:port", the name resolved to 127.0.0.1).
    std::unique_ptr<ProxyNode> node(const std::string& name, std::uint16_t smtp_port, const std::string& upstream,
                                    const std::string& smtp_extra = "", const std::string& inspection = "enabled = true\n") const {
        ProxyOptions o;
        o.hosts = {{kMx, "127.0.0.1"}, {"old.mail.example", "127.0.0.1"}};
        o.listen_extra = "smtp = \"127.0.0.1:" + std::to_string(smtp_port) + "\"\n";
        o.sections = "[smtp]\nupstream = \"" + upstream + "\"\n" + smtp_extra;
        o.inspection = inspection;
        return std::make_unique<ProxyNode>(ca, service->port(), work_dir(name), dir / "origin-root.pem", o);
    }
    std::filesystem::path root() const { return ca.dir / "pki/root-ca.pem"; }
    std::filesystem::path file(const std::string& name, const std::string& content) const {
        std::ofstream(dir / name, std::ios::binary) << content;
        return dir / name;
    }
};

// mail_client.py's JSON.
Json mail_client(const std::vector<std::string>& args, const std::vector<std::string>& via = {}) {
    std::vector<std::string> argv = via;
    argv.insert(argv.end(), {kPython, script("mail_client.py")});
    argv.insert(argv.end(), args.begin(), args.end());
    const auto r = run(argv, {}, std::chrono::seconds(120));
    const auto j = Json::parse(r.output.substr(0, r.output.find('\n')), nullptr, false);
    if (!j.is_object()) return Json{{"error", "mail_client.py: " + r.output}};
    return j;
}

std::vector<Json> mail_lines(const ProxyNode& p) {
    std::vector<Json> out;
    std::ifstream in(p.connection_log());
    for (std::string line; std::getline(in, line);) {
        auto j = Json::parse(line, nullptr, false);
        if (j.is_object() && j.value("type", "") == "mail") out.push_back(j);
    }
    return out;
}

Json last_connection(const ProxyNode& p) {
    p.settle();
    auto all = p.records();
    return all.empty() ? Json() : all.back();
}

std::string server_of(std::uint16_t port, const char* host = kMx) { return std::string(host) + ":" + std::to_string(port); }

}  // namespace

TEST_CASE("[smtp] configuration: defaults, and errors that name the key", "[proxy][mail][config]") {
    const auto& ca = TestCa::shared();
    const std::string text = read_file(ca.dir / "nodes/node-1/proxy-node.toml");
    const auto dir = work_dir("config");
    auto load = [&](const std::string& listen_line, const std::string& tables) {
        std::ofstream(dir / "n.toml") << std::regex_replace(text, std::regex("\\[listen\\]\n"), "[listen]\n" + listen_line)
                                      << "\n" << tables;
        return proxy::load_node_config(dir / "n.toml");
    };
    auto c = load("", "");
    CHECK(c.smtp.listen.empty());
    CHECK(c.smtp.transparent_ports == std::vector<std::uint16_t>{25, 587});
    CHECK(c.smtp.tls == proxy::SmtpSection::TlsPolicy::strict);
    CHECK_FALSE(c.smtp.no_starttls_plaintext);
    c = load("smtp = \"127.0.0.1:2525\"\n", "[smtp]\nupstream = \"mx.example.net:25\"\ntls = \"opportunistic\"\n"
                                                 "[smtp.tls_domains]\n\"Partner.Example\" = \"strict\"\n");
    CHECK(c.smtp.upstream_host == "mx.example.net");
    CHECK(c.smtp.tls_domains.at("partner.example") == proxy::SmtpSection::TlsPolicy::strict);
    CHECK(proxy::mail::tls_policy_for(c.smtp, "mx1.partner.example") == proxy::SmtpSection::TlsPolicy::strict);
    CHECK(proxy::mail::tls_policy_for(c.smtp, "otherpartner.example") == proxy::SmtpSection::TlsPolicy::opportunistic);
    using Catch::Matchers::ContainsSubstring;
    CHECK_THROWS_WITH(load("smtp = \"127.0.0.1:2525\"\n", ""), ContainsSubstring("smtp.upstream: is required with listen.smtp"));
    CHECK_THROWS_WITH(load("", "[smtp]\ntls = \"maybe\"\n"), ContainsSubstring("smtp.tls: must be \"strict\" or \"opportunistic\""));
    CHECK_THROWS_WITH(load("", "[smtp]\nno_starttls = \"yes\"\n"), ContainsSubstring("smtp.no_starttls"));
    CHECK_THROWS_WITH(load("", "[smtp.tls_domains]\n\"*.x.example\" = \"strict\"\n"), ContainsSubstring("is not a domain name"));
    CHECK_THROWS_WITH(load("", "[smtp]\ntransparent_ports = [25, 70000]\n"), ContainsSubstring("smtp.transparent_ports"));
    CHECK_THROWS_WITH(load("", "[smtp]\nmax_message_bytes = 10\n"), ContainsSubstring("smtp.max_message_bytes"));
    CHECK_THROWS_WITH(load("", "[smtp]\nupstreams = \"x:25\"\n"), ContainsSubstring("unknown key"));
    std::filesystem::remove_all(dir);
}

TEST_CASE("SMTP relay: STARTTLS on both sides, delivered byte-identical, an EICAR attachment refused with 554 and "
          "the next message on the same connection delivered",
          "[proxy][mail]") {
    MailSetup s("relay");
    auto mta = s.mta("relay-mta", {});
    const std::uint16_t port = free_port();
    auto p = s.node("relay-node", port, server_of(mta->port()));

    // swaks through the node, verifying the node's certificate for the server's name against
    // the interception root only.
    const std::string clean = message_with_attachment(pattern_body(300 * 1024), "clean");
    const auto clean_file = s.file("clean.eml", clean);
    auto r = run({"swaks", "--server", "127.0.0.1:" + std::to_string(port), "--from", "sender@client.example", "--to",
                  "rcpt@dest.example", "--tls", "--tls-verify", "--tls-ca-path", s.root().string(), "--tls-sni", kMx,
                  "--data", "@" + clean_file.string()},
                 {}, std::chrono::seconds(60));
    INFO(r.output << p->log() << mta->log());
    CHECK(r.exit_code == 0);
    // swaks ends the content with a line end of its own before the dot.
    CHECK(mta->wait_for(1) == clean + "\r\n");
    CHECK(mta->envelope(1).value("tls", false));
    auto conn = last_connection(*p);
    CHECK(conn.value("mode", "") == "smtp");
    CHECK(conn.value("decision", "") == "intercepted");
    CHECK(conn.value("host", "") == kMx);
    CHECK(conn["client_tls"].is_object());
    CHECK(conn["upstream_tls"].is_object());
    auto lines = mail_lines(*p);
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].value("decision", "") == "relayed");
    CHECK(lines[0].value("mail_from", "") == "sender@client.example");
    CHECK(lines[0].value("recipients", 0) == 1);
    CHECK(lines[0].value("parts", 0) == 2);
    CHECK(lines[0].value("tls", false));
    CHECK(lines[0].value("reply", 0) == 250);

    // One session, three messages: clean, EICAR attached (refused, never delivered), clean.
    const auto eicar_file = s.file("eicar.eml", message_with_attachment(proxy::inspect::eicar_test_string(), "eicar"));
    const auto second_file = s.file("second.eml", message_with_attachment("just data", "second"));
    auto j = mail_client({"--server", "127.0.0.1:" + std::to_string(port), "--starttls", "--cafile", s.root().string(),
                          "--sni", kMx, clean_file.string(), eicar_file.string(), second_file.string()});
    INFO(j.dump());
    CHECK(j.value("tls", false));
    REQUIRE(j["results"].size() == 3);
    CHECK(j["results"][0]["code"] == 250);
    CHECK(j["results"][1]["code"] == 554);
    CHECK_THAT(j["results"][1].value("text", ""), ContainsSubstring("5.7.1"));
    CHECK_THAT(j["results"][1].value("text", ""), ContainsSubstring("eicar"));
    CHECK(j["results"][2]["code"] == 250);
    CHECK(mta->wait_for(3) == read_file(second_file));
    CHECK(mta->delivered() == 3);
    // The client was told STARTTLS once, and the extensions the node passes on.
    CHECK(std::find(j["extensions"].begin(), j["extensions"].end(), "starttls") == j["extensions"].end());
    CHECK(std::find(j["extensions"].begin(), j["extensions"].end(), "size") != j["extensions"].end());
    lines = mail_lines(*p);
    REQUIRE(lines.size() == 4);
    CHECK(lines[2].value("decision", "") == "blocked");
    CHECK(lines[2].value("rule", "") == "eicar");
    CHECK(lines[2].value("reply", 0) == 554);
    CHECK(lines[2].value("size", 0) > 0);
    CHECK(lines[3].value("decision", "") == "relayed");
    // No content in the log: not the subject, not a recipient's address.
    CHECK_THAT(read_file(p->connection_log()), !ContainsSubstring("rcpt@dest.example"));
    CHECK_THAT(read_file(p->connection_log()), !ContainsSubstring("Subject"));
    auto m = p->mgmt_get("/metrics").output;
    CHECK_THAT(m, ContainsSubstring("proxy_mail_messages_total{outcome=\"relayed\"} 3"));
    CHECK_THAT(m, ContainsSubstring("proxy_mail_messages_total{outcome=\"blocked\"} 1"));
    CHECK_THAT(m, ContainsSubstring("proxy_mail_starttls_total 2"));
}

TEST_CASE("SMTP relay: BDAT chunks (the server offers CHUNKING) inspected whole, delivered byte-identical",
          "[proxy][mail]") {
    MailSetup s("bdat");
    Mta::Options mo;
    mo.chunking = true;
    auto mta = s.mta("bdat-mta", mo);
    const std::uint16_t port = free_port();
    auto p = s.node("bdat-node", port, server_of(mta->port()));
    // Binary-safe: NULs, bare line ends and a lone "." line are content in BDAT.
    std::string raw = message_with_attachment(pattern_body(50000), "bdat");
    raw += std::string("\0\r\n.\r\nbare\nline\r", 16);
    const auto clean = s.file("bdat.eml", raw);
    // EICAR split over two chunks.
    const auto eicar = s.file("bdat-eicar.eml", message_with_attachment(proxy::inspect::eicar_test_string(), "bdat-eicar"));
    auto j = mail_client({"--server", "127.0.0.1:" + std::to_string(port), "--starttls", "--cafile", s.root().string(),
                          "--sni", kMx, "--bdat", "700", clean.string(), eicar.string(), clean.string()});
    INFO(j.dump() << p->log() << mta->log());
    CHECK(std::find(j["extensions"].begin(), j["extensions"].end(), "chunking") != j["extensions"].end());
    REQUIRE(j["results"].size() == 3);
    CHECK(j["results"][0]["code"] == 250);
    CHECK(j["results"][1]["code"] == 554);
    CHECK(j["results"][2]["code"] == 250);
    CHECK(mta->wait_for(2) == raw);
    CHECK(mta->message(1) == raw);
    CHECK(mta->envelope(1).value("framing", "") == "BDAT");
    CHECK(mta->delivered() == 2);
    auto lines = mail_lines(*p);
    REQUIRE(lines.size() == 3);
    CHECK(lines[0].value("framing", "") == "BDAT");
    CHECK(lines[1].value("rule", "") == "eicar");
}

TEST_CASE("SMTP relay: STARTTLS command injection is discarded, not executed", "[proxy][mail]") {
    MailSetup s("inject");
    auto mta = s.mta("inject-mta", {});
    const std::uint16_t port = free_port();
    auto p = s.node("inject-node", port, server_of(mta->port()));
    auto j = mail_client({"--server", "127.0.0.1:" + std::to_string(port), "--inject", "--cafile", s.root().string(),
                          "--sni", kMx});
    INFO(j.dump() << p->log());
    CHECK(j.value("starttls", 0) == 220);
    CHECK(j.value("tls", false));
    // The MAIL FROM sent in clear with STARTTLS was not run after the handshake.
    CHECK(j.value("rcpt", 0) == 503);
    auto conn = last_connection(*p);
    CHECK_THAT(conn.value("detail", ""), ContainsSubstring("command injection"));
    CHECK_THAT(p->mgmt_get("/metrics").output, ContainsSubstring("proxy_mail_injection_discarded_total 1"));
}

TEST_CASE("SMTP relay: a server with an expired certificate, under strict and under opportunistic", "[proxy][mail]") {
    MailSetup s("expired");
    auto mta = s.mta("expired-mta", {.listen = "127.0.0.1", .port = 0, .netns = "", .starttls = true,
                                      .hostname = "old.mail.example"},
                     "old");
    const auto msg = s.file("m.eml", message_with_attachment("hello", "expired"));
    {
        const std::uint16_t port = free_port();
        auto p = s.node("strict-node", port, server_of(mta->port(), "old.mail.example"));
        auto j = mail_client({"--server", "127.0.0.1:" + std::to_string(port), "--starttls", "--cafile",
                              s.root().string(), "--sni", "old.mail.example", msg.string()});
        INFO(j.dump() << p->log());
        // 421 to the STARTTLS: the client keeps its mail queued, nothing went in clear.
        CHECK_THAT(j.value("error", ""), ContainsSubstring("421"));
        CHECK(mta->delivered() == 0);
        auto conn = last_connection(*p);
        CHECK(conn.value("reason", "") == "expired");
        CHECK(conn.value("decision", "") == "blocked");
        CHECK_THAT(p->mgmt_get("/metrics").output, ContainsSubstring("proxy_mail_upstream_tls_refused_total 1"));
    }
    {
        // Opportunistic for that domain only: encrypted anyway, what failed logged.
        const std::uint16_t port = free_port();
        auto p = s.node("opportunistic-node", port, server_of(mta->port(), "old.mail.example"),
                        "[smtp.tls_domains]\n\"mail.example\" = \"opportunistic\"\n");
        auto j = mail_client({"--server", "127.0.0.1:" + std::to_string(port), "--starttls", "--cafile",
                              s.root().string(), "--sni", "old.mail.example", msg.string()});
        INFO(j.dump() << p->log());
        REQUIRE(j["results"].size() == 1);
        CHECK(j["results"][0]["code"] == 250);
        CHECK(mta->wait_for(1) == read_file(msg));
        CHECK(mta->envelope(1).value("tls", false));
        auto conn = last_connection(*p);
        CHECK(conn.value("decision", "") == "intercepted");
        CHECK_THAT(conn.value("detail", ""), ContainsSubstring("opportunistic"));
        CHECK_THAT(conn.value("detail", ""), ContainsSubstring("expired"));
    }
}

TEST_CASE("SMTP relay: a server without STARTTLS, refused (421) or relayed in clear by policy", "[proxy][mail]") {
    MailSetup s("plain");
    auto mta = s.mta("plain-mta", {.listen = "127.0.0.1", .port = 0, .netns = "", .starttls = false, .hostname = kMx});
    const auto msg = s.file("m.eml", message_with_attachment("hello", "plain"));
    {
        const std::uint16_t port = free_port();
        auto p = s.node("refuse-node", port, server_of(mta->port()));
        auto j = mail_client({"--server", "127.0.0.1:" + std::to_string(port), msg.string()});
        INFO(j.dump() << p->log());
        CHECK(j.value("ehlo", 0) == 421);  // its mail stays queued
        CHECK(mta->delivered() == 0);
        CHECK(last_connection(*p).value("reason", "") == "no_starttls");
    }
    {
        const std::uint16_t port = free_port();
        auto p = s.node("plaintext-node", port, server_of(mta->port()), "no_starttls = \"plaintext\"\n");
        // STARTTLS is not offered to the client: it cannot believe its mail goes encrypted.
        auto r = run({"swaks", "--server", "127.0.0.1:" + std::to_string(port), "--to", "rcpt@dest.example", "--tls"},
                     {}, std::chrono::seconds(60));
        CHECK(r.exit_code != 0);
        CHECK_THAT(r.output, ContainsSubstring("STARTTLS"));
        auto j = mail_client({"--server", "127.0.0.1:" + std::to_string(port), msg.string()});
        INFO(j.dump() << p->log());
        REQUIRE(j["results"].size() == 1);
        CHECK(j["results"][0]["code"] == 250);
        CHECK(mta->wait_for(1) == read_file(msg));
        CHECK_FALSE(mta->envelope(1).value("tls", true));
        auto conn = last_connection(*p);
        CHECK(conn.value("decision", "") == "proxied");
        CHECK_THAT(conn.value("detail", ""), ContainsSubstring("in clear"));
        // Still inspected in clear.
        const auto eicar = s.file("e.eml", message_with_attachment(proxy::inspect::eicar_test_string(), "e"));
        j = mail_client({"--server", "127.0.0.1:" + std::to_string(port), eicar.string()});
        REQUIRE(j["results"].size() == 1);
        CHECK(j["results"][0]["code"] == 554);
        CHECK(mta->delivered() == 1);
    }
}

TEST_CASE("SMTP relay: garbage, huge lines, oversized and never-ending messages get clear errors and bounded memory",
          "[proxy][mail][hostile]") {
    MailSetup s("hostile");
    auto mta = s.mta("hostile-mta", {});
    const std::uint16_t port = free_port();
    auto p = s.node("hostile-node", port, server_of(mta->port()),
                    "max_message_bytes = 1048576\nmax_line_bytes = 1024\ndata_timeout_seconds = 3\n");
    const std::string at = "127.0.0.1:" + std::to_string(port);
    auto pysmtp = [&](const std::string& code) {
        return run({kPython, "-c", "import socket,sys,time\n"
                                   "s=socket.create_connection(('127.0.0.1'," + std::to_string(port) + "),timeout=20)\n"
                                   "f=s.makefile('rb')\n"
                                   "def reply():\n"
                                   "  while True:\n"
                                   "    l=f.readline()\n"
                                   "    if not l: return 'closed'\n"
                                   "    if l[3:4]!=b'-': return l.decode().strip()\n"
                                   "print(reply())\n" + code},
                   {}, std::chrono::seconds(60));
    };
    // A huge command line: 500, then closed.
    auto r = pysmtp("s.sendall(b'EHLO ' + b'x'*5000 + b'\\r\\n')\nprint(reply())\nprint(reply())\n");
    INFO(r.output << p->log());
    CHECK_THAT(r.output, ContainsSubstring("500 5.5.2"));
    CHECK_THAT(r.output, ContainsSubstring("closed"));
    CHECK(last_connection(*p).value("reason", "") == "malformed_smtp");
    // Binary garbage without a line end: closed at the line limit.
    r = pysmtp("s.sendall(bytes(range(1,256))*40)\nprint(reply())\n");
    CHECK_THAT(r.output, ContainsSubstring("500"));
    // Control characters inside a line are refused, not passed on.
    r = pysmtp("s.sendall(b'EHLO a\\rRCPT TO:<x@y>\\r\\n')\nprint(reply())\ns.sendall(b'QUIT\\r\\n')\nprint(reply())\n");
    CHECK_THAT(r.output, ContainsSubstring("500 5.5.2"));
    // BDAT to a server without CHUNKING (not offered): refused, its bytes read, in sync after.
    r = pysmtp("s.sendall(b'EHLO a\\r\\nMAIL FROM:<a@b>\\r\\nRCPT TO:<c@d>\\r\\n')\nfor i in range(3): print(reply())\n"
               "s.sendall(b'BDAT 12 LAST\\r\\nNOOP\\r\\nNOOP\\r\\nRSET\\r\\n')\nprint(reply());print(reply())\n");
    CHECK_THAT(r.output, ContainsSubstring("503 5.5.1 CHUNKING not offered"));
    CHECK_THAT(r.output, ContainsSubstring("250 "));
    // A message over max_message_bytes: 552, not relayed, the session goes on.
    r = pysmtp("s.sendall(b'EHLO a\\r\\n')\nprint(reply())\n"
               "s.sendall(b'MAIL FROM:<a@b>\\r\\nRCPT TO:<c@d>\\r\\n')\nprint(reply());print(reply())\n"
               "s.sendall(b'DATA\\r\\n')\nprint(reply())\n"
               "s.sendall((b'y'*998+b'\\r\\n')*3000 + b'.\\r\\n')\nprint(reply())\n"
               "s.sendall(b'NOOP\\r\\n')\nprint(reply())\n");
    CHECK_THAT(r.output, ContainsSubstring("552 5.3.4"));
    CHECK_THAT(r.output, ContainsSubstring("250"));
    CHECK(mta->delivered() == 0);
    // A message that never ends: cut at data_timeout_seconds, memory bounded meanwhile.
    r = pysmtp("s.sendall(b'EHLO a\\r\\nMAIL FROM:<a@b>\\r\\nRCPT TO:<c@d>\\r\\nDATA\\r\\n')\n"
               "for i in range(4): print(reply())\n"
               "t=time.time()\n"
               "try:\n"
               "  while time.time()-t < 15: s.sendall(b'z'*65536+b'\\r\\n')\n"
               "  print('not cut')\n"
               "except OSError: print('cut after %.0f s' % (time.time()-t))\n");
    CHECK_THAT(r.output, ContainsSubstring("cut after"));
    CHECK(last_connection(*p).value("reason", "") == "timeout");
    // The node is up and its memory stayed bounded (well under the 15 s of data sent).
    const std::string status = read_file("/proc/" + std::to_string(p->child().pid()) + "/status");
    const auto at_rss = status.find("VmHWM:");
    REQUIRE(at_rss != std::string::npos);
    CHECK(std::stol(status.substr(at_rss + 6)) < 200 * 1024);  // kB
    CHECK(p->child().running());
    auto j = mail_client({"--server", at, "--starttls", "--cafile", s.root().string(), "--sni", kMx,
                          s.file("ok.eml", "Subject: ok\r\n\r\nfine\r\n").string()});
    REQUIRE(j["results"].size() == 1);
    CHECK(j["results"][0]["code"] == 250);
}

TEST_CASE("SMTP relay: each MIME part through ICAP (c-icap + ClamAV); the engine down gives 451, then recovery",
          "[proxy][mail][icap]") {
    MailSetup s("icap");
    ClamavIcap engine(work_dir("icap-engine"));
    auto mta = s.mta("icap-mta", {});
    const std::uint16_t port = free_port();
    auto p = s.node("icap-node", port, server_of(mta->port()), "",
                    "enabled = true\n[icap.av]\nurl = \"" + engine.url() + "\"\nretry_interval_ms = 500\n");
    const std::string at = "127.0.0.1:" + std::to_string(port);
    // The custom signature in a quoted-printable text part: only the decoded part matches.
    const auto bad = s.file("bad.eml", "Subject: qp\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n"
                                       "--x\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
                                       "before =\r\n" + std::string(kCustomMalware).substr(0, 10) + "=\r\n" +
                                           std::string(kCustomMalware).substr(10) + " after\r\n--x--\r\n");
    const auto good = s.file("good.eml", message_with_attachment(pattern_body(20000), "good"));
    auto send = [&](const std::filesystem::path& f) {
        auto j = mail_client({"--server", at, "--starttls", "--cafile", s.root().string(), "--sni", kMx, f.string()});
        return j["results"].size() == 1 ? j["results"][0].value("code", 0) : -1;
    };
    INFO(p->log() << mta->log());
    CHECK(send(good) == 250);
    CHECK(send(bad) == 554);
    auto lines = mail_lines(*p);
    REQUIRE(lines.size() == 2);
    CHECK(lines[1].value("rule", "") == "icap.av");
    CHECK(mta->delivered() == 1);
    // Engine down: fail closed, and temporarily, so the client's MTA retries later.
    engine.stop_icap();
    CHECK(send(good) == 451);
    CHECK(mail_lines(*p).back().value("decision", "") == "refused");
    CHECK(mta->delivered() == 1);
    engine.start_icap();
    int code = 0;
    for (int i = 0; i < 40 && (code = send(good)) != 250; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(250));
    CHECK(code == 250);
    CHECK(mta->wait_for(2) == read_file(good));
}

TEST_CASE("transparent SMTP: port 25 steered by nftables, STARTTLS intercepted, the server named by its greeting",
          "[proxy][mail][transparent][netns]") {
    const std::string why = NetnsLab::unavailable();
    if (!why.empty()) SKIP(why);
    NetnsLab lab("mail");
    const std::uint16_t transparent_port = free_port();
    lab.nft("table ip steer {\n"
            "  chain prerouting {\n"
            "    type nat hook prerouting priority dstnat;\n"
            "    iifname \"" + lab.node_client_if() + "\" tcp dport 25 redirect to :" + std::to_string(transparent_port) + "\n"
            "  }\n"
            "}\n");
    MailSetup s("transparent", lab.node());
    auto mta = s.mta("transparent-mta", {.listen = NetnsLab::kServerAddr, .port = 25, .netns = lab.server(),
                                          .starttls = true, .hostname = kMx});
    ProxyOptions o;
    o.netns = lab.node();
    o.listen_extra = "transparent = \"0.0.0.0:" + std::to_string(transparent_port) + "\"\n";
    o.inspection = "enabled = true\n";
    auto p = std::make_unique<ProxyNode>(s.ca, s.service->port(), work_dir("transparent-node"), s.dir / "origin-root.pem", o);

    const std::string clean = message_with_attachment(pattern_body(100 * 1024), "transparent");
    const auto clean_file = s.file("t.eml", clean);
    const auto eicar_file = s.file("te.eml", message_with_attachment(proxy::inspect::eicar_test_string(), "te"));
    // The client's MTA connects to the server's address, with no proxy or smart host set.
    auto j = mail_client({"--server", std::string(NetnsLab::kServerAddr) + ":25", "--starttls", "--cafile",
                          s.root().string(), "--sni", kMx, clean_file.string(), eicar_file.string()},
                         NetnsLab::in(lab.client()));
    INFO(j.dump() << p->log() << mta->log());
    CHECK(j.value("tls", false));
    REQUIRE(j["results"].size() == 2);
    CHECK(j["results"][0]["code"] == 250);
    CHECK(j["results"][1]["code"] == 554);
    CHECK(mta->wait_for(1) == clean);
    CHECK(mta->delivered() == 1);
    auto conn = last_connection(*p);
    CHECK(conn.value("mode", "") == "transparent");
    CHECK(conn.value("target", "") == std::string(NetnsLab::kServerAddr) + ":25");
    CHECK(conn.value("host", "") == kMx);
    CHECK(conn.value("decision", "") == "intercepted");
    CHECK(conn.value("client", "").rfind(NetnsLab::kClientAddr, 0) == 0);
}
