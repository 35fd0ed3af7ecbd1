#include "support/bench_ca.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace bench {

BenchCa BenchCa::open_or_create(const std::filesystem::path& dir) {
    BenchCa ca;
    if (dir.empty()) {
        std::string tmpl = (std::filesystem::temp_directory_path() / "splitca-bench-XXXXXX").string();
        if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
        ca.dir = tmpl;
        ca.temporary = true;
        std::string cmd = std::string("HSM_TOOL=") + SPLITCA_BIN_DIR + "/hsm-tool " + SPLITCA_SOURCE_DIR +
                          "/hsm-setup/hsm-setup init --out " + ca.dir.string() + " >/dev/null";
        if (std::system(cmd.c_str()) != 0) throw std::runtime_error("hsm-setup init failed: " + cmd);
    } else {
        ca.dir = std::filesystem::absolute(dir);
    }
    std::ifstream in(ca.dir / "ca-service/ca-service.toml");
    if (!in) throw std::runtime_error(ca.dir.string() + " holds no ca-service/ca-service.toml (run hsm-setup init)");
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string toml = ss.str();
    std::smatch m;
    if (!std::regex_search(toml, m, std::regex("issuing_key = \"pkcs11:token=[^;]+;object=([^\"]+)\"")))
        throw std::runtime_error("no issuing_key in ca-service.toml");
    ca.issuing_key_label = m[1];
    if (!std::regex_search(toml, m, std::regex("module = \"([^\"]+)\"")))
        throw std::runtime_error("no module in ca-service.toml");
    ca.module = std::string(m[1]);
    if (std::filesystem::exists(ca.dir / "softhsm2.conf"))
        ::setenv("SOFTHSM2_CONF", (ca.dir / "softhsm2.conf").c_str(), 1);
    return ca;
}

BenchCa::~BenchCa() {
    if (temporary && !dir.empty()) std::filesystem::remove_all(dir);
}

pkcs11::SignerConfig BenchCa::issuing_signer() const {
    pkcs11::SignerConfig c;
    c.hsm.module = module;
    c.hsm.token_label = "splitca-issuing";
    c.hsm.pin = pkcs11::PinSource::parse("file:" + (dir / "ca-service/issuing-token.pin").string());
    c.key = pkcs11::Uri::parse("pkcs11:token=splitca-issuing;object=" + issuing_key_label);
    return c;
}

double measure_rate(int threads, std::chrono::milliseconds duration, const std::function<void(int)>& op) {
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> total{0};
    std::vector<std::thread> pool;
    const auto start = std::chrono::steady_clock::now();
    for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
            std::uint64_t n = 0;
            while (!stop.load(std::memory_order_relaxed)) {
                op(t);
                ++n;
            }
            total += n;
        });
    }
    std::this_thread::sleep_for(duration);
    stop = true;
    for (auto& th : pool) th.join();
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return static_cast<double>(total.load()) / secs;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace bench
