#include "privsep/front.hpp"

#include "api/server.hpp"
#include "privsep/sandbox.hpp"
#include "privsep/signer_link.hpp"
#include "resources/open_files.hpp"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <iostream>
#include <thread>

namespace ca::privsep {

namespace {
// A front (re)started while the signer is (re)starting too: how long it waits for the
// hello before serving 503s with the reason.
constexpr std::chrono::seconds kHelloWait{30};
// Descriptors: one per client connection; the rest (listener, channel, epoll and thread
// wake-ups) fit in the reserve.
constexpr unsigned kDescriptorsPerConnection = 1;
constexpr std::uint64_t kReservedDescriptors = 64;
}  // namespace

int run_front(ServiceConfig config, FrontOptions options) {
    const auto budget = resources::fit_connections(resources::raise_open_file_limit(), "server.max_connections",
                                                   config.server.max_connections, kDescriptorsPerConnection,
                                                   kReservedDescriptors);
    if (!budget.warning.empty()) std::cerr << "ca-service front: " << budget.warning << "\n";
    config.server.max_connections = budget.max_connections;

    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    ::signal(SIGPIPE, SIG_IGN);

    SignerLink signer(options.channel_fd);
    ApiServer server(config, {signer}, options.listener_fd);  // reads the TLS key: still privileged
    const bool dropped = drop_to_user(config.front.user);
    confine_front();
    if (!dropped)
        std::cerr << "ca-service front: not started as root, so it keeps this user (uid " << ::getuid()
                  << "); as root it would run as '" << config.front.user << "'\n";

    signer.start();
    if (!signer.wait_up(kHelloWait))
        std::cerr << "ca-service front: no hello from the signer after " << kHelloWait.count()
                  << " s; answering 503 until it comes\n";
    std::thread signal_waiter([&] {
        int sig = 0;
        sigwait(&stop_signals, &sig);
        if (sig != SIGTERM && sig != SIGINT) return;
        std::cerr << "ca-service front: signal " << sig << ", stopping\n";
        server.stop();
    });
    if (options.ready_fd >= 0) {
        const char ready = 1;
        [[maybe_unused]] auto n = ::write(options.ready_fd, &ready, 1);
        ::close(options.ready_fd);
    }
    std::cerr << "ca-service front: serving " << config.listen.host << ":" << config.listen.port
              << " (TLS 1.3, mTLS; up to " << config.server.max_connections << " connections at once)"
              << (dropped ? " as " + config.front.user : std::string()) << "\n";
    server.run();
    if (signal_waiter.joinable()) {
        // run() returned without a signal: release the waiter.
        pthread_kill(signal_waiter.native_handle(), SIGTERM);
        signal_waiter.join();
    }
    signer.stop();
    std::cerr << "ca-service front: stopped\n";
    return 0;
}

}  // namespace ca::privsep
