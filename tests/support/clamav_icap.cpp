#include "support/clamav_icap.hpp"

#include <openssl/evp.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <thread>

namespace testing_support {

namespace {

using Clock = std::chrono::steady_clock;

std::string eicar() {
    // Built at run time, as proxy-node's rule set does: no scanner should take the test
    // binary for the test file.
    std::string s = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$";
    s += "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
    return s;
}

std::string md5_hex(const std::string& data) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(data.data(), data.size(), md, &n, EVP_md5(), nullptr);
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < n; ++i) {
        out += hex[md[i] >> 4];
        out += hex[md[i] & 15];
    }
    return out;
}

std::string to_hex(const std::string& s) {
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (unsigned char c : s) {
        out += hex[c >> 4];
        out += hex[c & 15];
    }
    return out;
}

bool unix_accepting(const std::filesystem::path& path) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
}

}  // namespace

ClamavIcap::ClamavIcap(const std::filesystem::path& dir, const OriginCert* tls) : dir_(dir) {
    std::filesystem::create_directories(dir_ / "db");
    std::filesystem::create_directories(dir_ / "tmp");
    if (tls != nullptr) write_cert_and_key(*tls, dir_ / "icap-cert.pem", dir_ / "icap-key.pem");
    const std::string e = eicar();
    std::ofstream(dir_ / "db/test.hdb") << md5_hex(e) << ":" << e.size() << ":" << kEicarThreat << "\n";
    std::ofstream(dir_ / "db/test.ndb") << kCustomThreat << ":0:*:" << to_hex(kCustomMalware) << "\n";
    const std::string d = dir_.string();
    std::ofstream(dir_ / "clamd.conf") << "Foreground yes\nDatabaseDirectory " << d << "/db\nLocalSocket " << d
                                       << "/clamd.sock\nLogFile " << d << "/clamd.log\nTemporaryDirectory " << d
                                       << "/tmp\nMaxThreads 4\n";
    clamd_ = std::make_unique<Child>(std::vector<std::string>{"/usr/sbin/clamd", "-c", d + "/clamd.conf"}, dir_ / "clamd.out");
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    while (Clock::now() < deadline && clamd_->running() && !unix_accepting(dir_ / "clamd.sock"))
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (!unix_accepting(dir_ / "clamd.sock"))
        throw std::runtime_error("clamd did not start; see " + (dir_ / "clamd.out").string() + ":\n" +
                                 read_file(dir_ / "clamd.out"));
    for (int attempt = 0; attempt < 5; ++attempt) {
        port_ = free_port();
        if (tls != nullptr) tls_port_ = free_port();
        try {
            start_icap();
            return;
        } catch (const std::runtime_error&) {
            if (attempt == 4) throw;
        }
    }
}

ClamavIcap::~ClamavIcap() {
    stop_icap();
    clamd_.reset();
}

void ClamavIcap::write_icap_config() const {
    const std::string d = dir_.string();
    std::ofstream(dir_ / "c-icap.conf")
        << "PidFile " << d << "/c-icap.pid\nCommandsSocket " << d << "/c-icap.ctl\n"
        << "Timeout 300\nMaxKeepAliveRequests 10000\nKeepAliveTimeout 600\n"
        << "StartServers 1\nMaxServers 1\nMinSpareThreads 4\nMaxSpareThreads 40\nThreadsPerChild 40\n"
        << "MaxRequestsPerChild 0\nPort 127.0.0.1:" << port_ << "\n"
        << (tls_port_ == 0 ? std::string()
                           : "TlsPort 127.0.0.1:" + std::to_string(tls_port_) + " cert=" + d + "/icap-cert.pem key=" + d +
                                 "/icap-key.pem\n")
        << "TmpDir " << d << "/tmp\nMaxMemObject 131072\n"
        << "DebugLevel 1\nModulesDir /usr/lib/x86_64-linux-gnu/c_icap\nServicesDir /usr/lib/x86_64-linux-gnu/c_icap\n"
        << "TemplateDir /usr/share/c_icap/templates/\nTemplateDefaultLanguage en\n"
        << "LoadMagicFile /etc/c-icap/c-icap.magic\nServerLog " << d << "/server.log\nAccessLog " << d << "/access.log\n"
        << "Module common clamd_mod.so\nclamd_mod.ClamdSocket " << d << "/clamd.sock\n"
        << "Service avscan virus_scan.so\n"
        << "virus_scan.ScanFileTypes TEXT DATA EXECUTABLE ARCHIVE GIF JPEG MSOFFICE\n"
        << "virus_scan.SendPercentData 5\nvirus_scan.StartSendPercentDataAfter 2M\n"
        << "virus_scan.MaxObjectSize 5M\nvirus_scan.Allow204Responces on\nvirus_scan.DefaultEngine clamd\n";
}

void ClamavIcap::start_icap() {
    write_icap_config();
    std::filesystem::remove(dir_ / "c-icap.pid");
    std::filesystem::remove(dir_ / "c-icap.ctl");
    icap_ = std::make_unique<Child>(
        std::vector<std::string>{"/usr/bin/c-icap", "-N", "-D", "-d", "1", "-f", (dir_ / "c-icap.conf").string()},
        dir_ / "c-icap.out");
    const auto deadline = Clock::now() + std::chrono::seconds(20);
    auto up = [this] { return loopback_accepting(port_) && (tls_port_ == 0 || loopback_accepting(tls_port_)); };
    while (Clock::now() < deadline && icap_->running() && !up()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (!icap_->running() || !up()) {
        icap_.reset();
        throw std::runtime_error("c-icap did not start on port " + std::to_string(port_) + ":\n" +
                                 read_file(dir_ / "c-icap.out") + read_file(dir_ / "server.log"));
    }
}

void ClamavIcap::stop_icap() {
    if (!icap_) return;
    icap_->kill_group(SIGKILL);
    icap_->wait(std::chrono::seconds(10));
    icap_.reset();
    // Until the port is free again (its children go with the group).
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    while (Clock::now() < deadline && loopback_accepting(port_)) std::this_thread::sleep_for(std::chrono::milliseconds(20));
}

std::string ClamavIcap::access_log() const { return read_file(dir_ / "access.log"); }

std::vector<int> ClamavIcap::pids() const {
    std::vector<int> out;
    if (icap_) {
        out.push_back(icap_->pid());
        std::error_code ec;
        for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(icap_->pid()) + "/task", ec)) {
            std::ifstream children(task.path() / "children");
            for (int pid; children >> pid;) out.push_back(pid);
        }
    }
    if (clamd_) out.push_back(clamd_->pid());
    return out;
}

}  // namespace testing_support
