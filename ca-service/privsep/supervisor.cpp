#include "privsep/supervisor.hpp"

#include "api/server.hpp"
#include "config/service_config.hpp"
#include "privsep/channel.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

extern char** environ;

namespace ca::privsep {

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::chrono::seconds kFirstReadyLimit{120};  // HSM login, audit log recovery
constexpr std::chrono::milliseconds kFirstBackoff{100};
constexpr std::chrono::milliseconds kMaxBackoff{5000};
constexpr std::chrono::seconds kStableAfter{30};  // a role up this long restarts at once again
constexpr std::chrono::seconds kStopLimit{20};    // per role, after SIGTERM, before SIGKILL
constexpr std::string_view kFrontEnvironment[] = {"ASAN_OPTIONS", "LSAN_OPTIONS", "UBSAN_OPTIONS", "TZ"};

std::string describe_exit(int status) {
    if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) {
        const int sig = WTERMSIG(status);
        return std::string("was killed by signal ") + std::to_string(sig) + " (" + ::strsignal(sig) + ")" +
               (sig == SIGSYS ? ": a system call outside its seccomp filter" : "");
    }
    return "stopped (status " + std::to_string(status) + ")";
}

struct Role {
    explicit Role(const char* role_name) : name(role_name) {}
    const char* name;  // "signer", "front"
    pid_t pid = -1;
    Clock::time_point started{};
    std::chrono::milliseconds backoff = kFirstBackoff;
    std::optional<Clock::time_point> restart_at;
    bool ready_once = false;
};

class Supervisor {
public:
    Supervisor(std::filesystem::path config_file, ServiceConfig config)
        : config_file_(std::move(config_file)), config_(std::move(config)) {}

    int run() {
        sigset_t signals;
        sigemptyset(&signals);
        for (int sig : {SIGTERM, SIGINT, SIGCHLD, SIGHUP}) sigaddset(&signals, sig);
        sigprocmask(SIG_BLOCK, &signals, &original_mask_);
        ::signal(SIGPIPE, SIG_IGN);

        listener_ = bind_listener(config_.listen);
        std::tie(front_end_, signer_end_) = make_channel_pair();

        // First start: the signer must be serving before the front takes clients, and a
        // failure of either is the operator's to fix.
        if (!start_first(signer_) || !start_first(front_)) {
            stop_all();
            return 1;
        }
        std::cerr << "ca-service: serving " << config_.listen.host << ":" << config_.listen.port
                  << " (front pid " << front_.pid << ", signer pid " << signer_.pid << ")\n";

        for (;;) {
            timespec wait = next_wait();
            siginfo_t info{};
            const int sig = ::sigtimedwait(&signals, &info, &wait);
            if (sig == SIGTERM || sig == SIGINT) {
                std::cerr << "ca-service: signal " << sig << ", stopping\n";
                stop_all();
                return 0;
            }
            if (sig == SIGCHLD) reap();
            restart_due();
        }
    }

private:
    // Starts a role and waits for its ready byte; false (with the reason printed) when it
    // exits or stays silent first.
    bool start_first(Role& role) {
        int ready[2];
        if (::pipe2(ready, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
        spawn(role, ready[1]);
        ::close(ready[1]);
        pollfd p{ready[0], POLLIN, 0};
        const int n = ::poll(&p, 1, static_cast<int>(std::chrono::milliseconds(kFirstReadyLimit).count()));
        char byte = 0;
        const bool ok = n == 1 && ::read(ready[0], &byte, 1) == 1;
        ::close(ready[0]);
        if (ok) {
            role.ready_once = true;
            return true;
        }
        int status = 0;
        if (n == 1 && ::waitpid(role.pid, &status, 0) == role.pid) {
            std::cerr << "ca-service: the " << role.name << " " << describe_exit(status)
                      << " before it was ready; see its message above\n";
            role.pid = -1;
        } else {
            std::cerr << "ca-service: the " << role.name << " was not ready after " << kFirstReadyLimit.count()
                      << " s\n";
        }
        return false;
    }

    void spawn(Role& role, int ready_fd) {
        const bool signer = &role == &signer_;
        if (signer) ++epoch_;
        std::vector<std::string> args = {"ca-service", "--role", role.name, "--config", config_file_.string()};
        if (signer) {
            args.push_back("--epoch");
            args.push_back(std::to_string(epoch_));
        }
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        // The signer inherits the environment (hsm.pin_env may name a variable in it); the
        // front gets only what the sanitizers and the clock read, so no secret reaches it.
        std::vector<char*> envp;
        for (char** e = environ; *e != nullptr; ++e) {
            const std::string_view entry(*e);
            const bool allowed = std::any_of(std::begin(kFrontEnvironment), std::end(kFrontEnvironment),
                                              [&](std::string_view key) {
                                                  return entry.size() > key.size() && entry.starts_with(key) &&
                                                         entry[key.size()] == '=';
                                              });
            if (signer || allowed) envp.push_back(*e);
        }
        envp.push_back(nullptr);
        const pid_t parent = ::getpid();
        const pid_t pid = ::fork();
        if (pid < 0) throw std::runtime_error(std::string("fork failed: ") + std::strerror(errno));
        if (pid == 0) {
            // In the child: only async-signal-safe calls until exec.
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (::getppid() != parent) ::_exit(1);
            const int channel = signer ? signer_end_ : front_end_;
            // Move the descriptors above the fixed numbers first, so no dup2 overwrites one
            // still needed.
            const int moved_channel = ::fcntl(channel, F_DUPFD, 10);
            const int moved_ready = ::fcntl(ready_fd, F_DUPFD, 10);
            const int moved_listener = signer ? -1 : ::fcntl(listener_, F_DUPFD, 10);
            if (moved_channel < 0 || ::dup2(moved_channel, kChannelFd) < 0) ::_exit(1);
            if (moved_ready < 0 || ::dup2(moved_ready, kReadyFd) < 0) ::_exit(1);
            if (moved_listener >= 0 && ::dup2(moved_listener, kListenerFd) < 0) ::_exit(1);
            // dup2'd descriptors are not close-on-exec; everything else is, or is closed here.
            for (int fd = kListenerFd + 1; fd < 1024; ++fd) ::close(fd);
            if (signer) ::close(kListenerFd);
            ::sigprocmask(SIG_SETMASK, &original_mask_, nullptr);
            ::signal(SIGPIPE, SIG_DFL);
            ::execve("/proc/self/exe", argv.data(), envp.data());
            ::_exit(127);
        }
        role.pid = pid;
        role.started = Clock::now();
        role.restart_at.reset();
    }

    void reap() {
        for (;;) {
            int status = 0;
            const pid_t pid = ::waitpid(-1, &status, WNOHANG);
            if (pid <= 0) return;
            Role* role = pid == signer_.pid ? &signer_ : pid == front_.pid ? &front_ : nullptr;
            if (role == nullptr) continue;
            role->pid = -1;
            const auto up_for = Clock::now() - role->started;
            if (up_for > kStableAfter) role->backoff = kFirstBackoff;
            const std::string what = "the " + std::string(role->name) + " " + describe_exit(status);
            std::cerr << "ca-service: " << what << "; restarting it in " << role->backoff.count() << " ms\n";
            if (role == &signer_) {
                // Into the signer's end: the front reads it as from the signer.
                Channel end(::dup(signer_end_));
                end.send({0, epoch_, SignerDown{what + "; it is being restarted"}});
            }
            role->restart_at = Clock::now() + role->backoff;
            role->backoff = std::min(role->backoff * 2, kMaxBackoff);
        }
    }

    void restart_due() {
        const auto now = Clock::now();
        for (Role* role : {&signer_, &front_}) {
            if (role->pid < 0 && role->restart_at && *role->restart_at <= now) {
                // A ready pipe nobody reads: a role always owns the descriptor it is told
                // about (and its one write fails harmlessly, SIGPIPE being ignored).
                int ready[2];
                if (::pipe2(ready, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
                ::close(ready[0]);
                spawn(*role, ready[1]);
                ::close(ready[1]);
                std::cerr << "ca-service: restarted the " << role->name << " (pid " << role->pid << ")\n";
            }
        }
    }

    timespec next_wait() const {
        auto wait = std::chrono::milliseconds(1000);
        const auto now = Clock::now();
        for (const Role* role : {&signer_, &front_})
            if (role->pid < 0 && role->restart_at)
                wait = std::min(wait, std::max(std::chrono::milliseconds(0),
                                               std::chrono::duration_cast<std::chrono::milliseconds>(*role->restart_at - now)));
        return {static_cast<time_t>(wait.count() / 1000), static_cast<long>((wait.count() % 1000) * 1000000)};
    }

    // The front first (it finishes the requests it has read), then the signer (it answers
    // what it took, writes the stop record and closes the log).
    void stop_all() {
        for (Role* role : {&front_, &signer_}) {
            if (role->pid < 0) continue;
            ::kill(role->pid, SIGTERM);
            const auto deadline = Clock::now() + kStopLimit;
            int status = 0;
            while (::waitpid(role->pid, &status, WNOHANG) == 0) {
                if (Clock::now() > deadline) {
                    std::cerr << "ca-service: the " << role->name << " did not stop in " << kStopLimit.count()
                              << " s; killing it\n";
                    ::kill(role->pid, SIGKILL);
                    ::waitpid(role->pid, &status, 0);
                    break;
                }
                ::usleep(20'000);
            }
            role->pid = -1;
        }
        std::cerr << "ca-service: stopped\n";
    }

    std::filesystem::path config_file_;
    ServiceConfig config_;
    sigset_t original_mask_{};
    int listener_ = -1;
    int front_end_ = -1;
    int signer_end_ = -1;
    std::uint32_t epoch_ = 0;
    Role signer_{"signer"};
    Role front_{"front"};
};

}  // namespace

int run_supervisor(const std::filesystem::path& config_file) {
    ServiceConfig config = load_service_config(config_file);
    Supervisor supervisor(std::filesystem::absolute(config_file), std::move(config));
    return supervisor.run();
}

}  // namespace ca::privsep
