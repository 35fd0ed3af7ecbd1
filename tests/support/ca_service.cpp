#include "support/ca_service.hpp"

#include "ossl/encoding.hpp"
#include "ossl/handles.hpp"
#include "ossl/pem.hpp"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <iterator>
#include <stdexcept>
#include <thread>

namespace testing_support {

std::string new_public_key_b64() {
    ossl::PKey key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    return ossl::to_base64(ossl::public_key_der(*key));
}

std::string leaf_request_json(const std::vector<std::string>& names, const std::string& key, int lifetime) {
    std::string out = "{\"names\":[";
    for (std::size_t i = 0; i < names.size(); ++i) out += (i ? ",\"" : "\"") + names[i] + "\"";
    out += "],\"public_key\":\"" + key + "\"";
    if (lifetime > 0) out += ",\"lifetime_seconds\":" + std::to_string(lifetime);
    return out + "}";
}

CaService::CaService(const TestCa& ca, std::filesystem::path work_dir, ServiceOptions options)
    : ca_(ca), work_(std::move(work_dir)), options_(std::move(options)), port_(free_port()) {
    std::filesystem::create_directories(work_ / "state");
    const auto& d = ca_.dir;
    // The nodes hsm-setup enrolled, as a deployment has them in its state directory.
    if (std::filesystem::exists(d / "ca-service/state/known-nodes"))
        std::filesystem::copy_file(d / "ca-service/state/known-nodes", work_ / "state/known-nodes",
                                   std::filesystem::copy_options::overwrite_existing);
    std::ofstream cfg(config_file());
    cfg << "[listen]\naddress = \"127.0.0.1:" << port_ << "\"\n"
        << "[tls]\ncertificate = \"" << (d / "ca-service/tls.pem").string() << "\"\n"
        << "private_key = \"" << (d / "ca-service/tls.key").string() << "\"\n"
        << "client_ca = \"" << (d / "pki/service-ca.pem").string() << "\"\n"
        << "[hsm]\nmodule = \"" << (options_.module.empty() ? kSoftHsmModule.string() : options_.module) << "\"\n"
        << "token = \"splitca-issuing\"\n"
        << "pin_file = \"" << ca_.issuing_pin().string() << "\"\n"
        << "issuing_key = \"pkcs11:token=splitca-issuing;object=" << ca_.issuing_key_label() << "\"\n"
        << "audit_key = \"pkcs11:token=splitca-issuing;object=audit\"\n"
        << "softhsm2_conf = \"" << ca_.softhsm_conf().string() << "\"\n"
        << options_.hsm_extra
        << "[ca]\nissuing_certificate = \"" << (d / "pki/issuing-ca.pem").string() << "\"\n"
        << "root_certificate = \"" << (d / "pki/root-ca.pem").string() << "\"\n"
        << "[policy]\n" << options_.policy_extra
        << "[rate_limit]\n" << options_.rate_limit
        << "[audit]\ndirectory = \"" << audit_dir().string() << "\"\n"
        << "checkpoint_every = " << options_.checkpoint_every << "\n"
        << "[state]\ndirectory = \"" << (work_ / "state").string() << "\"\n"
        << "[server]\n" << options_.server_extra;
    if (options_.node_identity)
        cfg << "[node_identity]\nca_certificate = \"" << (d / "pki/node-identity-ca.pem").string() << "\"\n"
            << "ca_key = \"pkcs11:token=splitca-issuing;object=node-identity-ca\"\n"
            << "lifetime_seconds = " << options_.node_identity_lifetime << "\n" << options_.node_identity_extra;
    cfg.close();
    start();
}

CaService::~CaService() { child_.reset(); }

void CaService::start() {
    std::vector<std::string> via;
    if (!options_.netns.empty()) via = {"ip", "netns", "exec", options_.netns};
    std::vector<std::string> argv = via;
    argv.insert(argv.end(), options_.launcher.begin(), options_.launcher.end());
    for (const auto& a : {(kBinDir / "ca-service").string(), std::string("--config"), config_file().string()})
        argv.push_back(a);
    child_ = std::make_unique<Child>(argv, work_ / "service.log", options_.env);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
        if (!child_->running()) throw std::runtime_error("ca-service exited:\n" + log());
        auto r = curl_request(ca_, url("/healthz"), (ca_.dir / "nodes/node-1/node.pem").string(),
                              (ca_.dir / "nodes/node-1/node.key").string(), "GET", "", "application/json", via);
        if (r.status != 0) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    throw std::runtime_error("ca-service did not answer on port " + std::to_string(port_) + ":\n" + log());
}

void CaService::stop() {
    if (!child_) return;
    child_->kill(SIGTERM);
    child_->wait(std::chrono::seconds(15));
    child_.reset();
}

void CaService::kill9() {
    if (!child_) return;
    const int group = child_->pid();
    child_->kill_group(SIGKILL);
    child_->wait(std::chrono::seconds(5));
    child_.reset();
    // The roles die with it; the next start must not find the old signer holding the log.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (::kill(-group, 0) == 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

int CaService::role_pid(const std::string& role) const {
    if (!child_) return -1;
    const std::string parent = std::to_string(child_->pid());
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    do {
        for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
            const auto name = entry.path().filename().string();
            if (name.find_first_not_of("0123456789") != std::string::npos) continue;
            std::ifstream stat(entry.path() / "stat");
            std::string line;
            if (!std::getline(stat, line)) continue;
            // pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'.
            const auto close = line.rfind(')');
            if (close == std::string::npos) continue;
            std::istringstream rest(line.substr(close + 1));
            std::string state, ppid;
            rest >> state >> ppid;
            if (ppid != parent) continue;
            std::ifstream cmdline(entry.path() / "cmdline");
            std::string args((std::istreambuf_iterator<char>(cmdline)), std::istreambuf_iterator<char>());
            if (args.find(std::string("--role") + '\0' + role + '\0') != std::string::npos) return std::stoi(name);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    } while (std::chrono::steady_clock::now() < deadline);
    return -1;
}

bool CaService::running() { return child_ && child_->running(); }

int CaService::pid() const { return child_ ? child_->pid() : -1; }

std::string CaService::url(const std::string& path) const {
    return "https://127.0.0.1:" + std::to_string(port_) + path;
}

std::string CaService::log() const { return read_file(work_ / "service.log"); }

HttpReply curl_request(const TestCa& ca, const std::string& url, const std::string& cert, const std::string& key,
                       const std::string& method, const std::string& body, const std::string& content_type,
                       const std::vector<std::string>& via) {
    auto tmp = make_temp_dir("splitca-curl");
    std::vector<std::string> argv = via;
    argv.insert(argv.end(), {"curl", "-sS", "--max-time", "20", "--cacert", (ca.dir / "pki/service-ca.pem").string(), "-X",
                             method, "-D", (tmp / "headers").string(), "-o", (tmp / "body").string(), "-w",
                             "%{http_code}"});
    if (!cert.empty()) argv.insert(argv.end(), {"--cert", cert, "--key", key});
    if (!body.empty() || method == "POST") {
        std::ofstream(tmp / "request") << body;
        argv.insert(argv.end(), {"-H", "Content-Type: " + content_type, "--data-binary", "@" + (tmp / "request").string()});
    }
    argv.push_back(url);
    auto r = run(argv);
    HttpReply reply;
    auto nl = r.output.rfind('\n');
    std::string code = nl == std::string::npos ? r.output : r.output.substr(nl + 1);
    try {
        reply.status = std::stoi(code.substr(code.size() >= 3 ? code.size() - 3 : 0));
    } catch (...) {
        reply.status = 0;
    }
    if (r.exit_code != 0) {
        reply.status = 0;
        reply.curl_error = r.output;
    }
    reply.body = read_file(tmp / "body");
    reply.headers = read_file(tmp / "headers");
    std::filesystem::remove_all(tmp);
    return reply;
}

}  // namespace testing_support
