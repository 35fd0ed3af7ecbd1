// ca-service: the only component that can make the HSM sign. Issues short-lived leaf
// certificates to authenticated proxy nodes over mTLS, under a policy, with per-node rate
// limits and a tamper-evident audit log.
//
// Three processes (see privsep/): `ca-service --config FILE` is the supervisor; it runs
// this binary again as `--role signer` (PIN, HSM, policy, audit) and `--role front`
// (network, TLS, HTTP, JSON; unprivileged and confined).

#include "config/service_config.hpp"
#include "privsep/front.hpp"
#include "privsep/sandbox.hpp"
#include "privsep/signer.hpp"
#include "privsep/supervisor.hpp"

#include <charconv>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

namespace {

constexpr const char* kUsage =
    "usage: ca-service --config FILE\n"
    "  FILE is the ca-service.toml written by hsm-setup.\n"
    "  SIGTERM or SIGINT stops the service after in-flight requests; a final audit\n"
    "  checkpoint is signed on the way out.\n"
    "  (--role signer|front is how the service starts its own processes; not for operators.)\n";

std::uint32_t parse_epoch(const std::string& text) {
    std::uint32_t v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size()) throw std::invalid_argument("--epoch needs a number");
    return v;
}

}  // namespace

int main(int argc, char** argv) {
    const std::vector<std::string> args(argv + 1, argv + argc);
    if (args.size() == 1 && (args[0] == "--help" || args[0] == "-h")) {
        std::cout << kUsage;
        return 0;
    }
    const char* who = "ca-service";
    try {
        if (args.size() == 2 && args[0] == "--config") return ca::privsep::run_supervisor(args[1]);
        if (args.size() == 2 && args[0] == "--sandbox-self-test") return ca::privsep::sandbox_self_test(args[1]);
        if (args.size() >= 4 && args[0] == "--role" && args[2] == "--config") {
            const ca::ServiceConfig config = ca::load_service_config(args[3]);
            if (args[1] == "signer" && args.size() == 6 && args[4] == "--epoch") {
                who = "ca-service signer";
                return ca::privsep::run_signer(
                    config, {ca::privsep::kChannelFd, parse_epoch(args[5]), ca::privsep::kReadyFd});
            }
            if (args[1] == "front" && args.size() == 4) {
                who = "ca-service front";
                return ca::privsep::run_front(config,
                                              {ca::privsep::kChannelFd, ca::privsep::kListenerFd, ca::privsep::kReadyFd});
            }
        }
    } catch (const std::exception& e) {
        std::cerr << who << ": " << e.what() << "\n";
        return 1;
    }
    std::cerr << kUsage;
    return 2;
}
