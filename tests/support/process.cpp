#include "support/process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <spawn.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace testing_support {

namespace {

// Everything a child needs is prepared before it exists: the test process has many threads,
// and a forked child that allocates (setenv, building argv) can deadlock on a lock another
// thread held at the fork. posix_spawn (vfork + exec in glibc) does no such work in the child.
class SpawnPlan {
public:
    SpawnPlan(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env) : argv_(argv) {
        if (argv_.empty()) throw std::invalid_argument("run: empty argv");
        for (char** e = environ; *e != nullptr; ++e) {
            std::string_view entry(*e);
            auto eq = entry.find('=');
            if (eq != std::string_view::npos && env.count(std::string(entry.substr(0, eq))) != 0) continue;
            env_.emplace_back(entry);
        }
        for (const auto& [k, v] : env) env_.push_back(k + "=" + v);
        for (auto& a : argv_) argv_ptrs_.push_back(a.data());
        argv_ptrs_.push_back(nullptr);
        for (auto& e : env_) env_ptrs_.push_back(e.data());
        env_ptrs_.push_back(nullptr);
        if (posix_spawn_file_actions_init(&actions_) != 0) throw std::runtime_error("posix_spawn_file_actions_init");
        if (posix_spawnattr_init(&attr_) != 0) {
            posix_spawn_file_actions_destroy(&actions_);
            throw std::runtime_error("posix_spawnattr_init");
        }
    }
    ~SpawnPlan() {
        posix_spawnattr_destroy(&attr_);
        posix_spawn_file_actions_destroy(&actions_);
    }
    SpawnPlan(const SpawnPlan&) = delete;
    SpawnPlan& operator=(const SpawnPlan&) = delete;

    // stdin from /dev/null, stdout and stderr to `fd`.
    void redirect_output(int fd) {
        check(posix_spawn_file_actions_addopen(&actions_, 0, "/dev/null", O_RDONLY, 0));
        check(posix_spawn_file_actions_adddup2(&actions_, fd, 1));
        check(posix_spawn_file_actions_adddup2(&actions_, fd, 2));
    }
    // A process group of its own, so that everything it forks can be signalled at once.
    void own_process_group() {
        check(posix_spawnattr_setpgroup(&attr_, 0));
        check(posix_spawnattr_setflags(&attr_, POSIX_SPAWN_SETPGROUP));
    }
    pid_t spawn() {
        pid_t pid = -1;
        int rc = posix_spawnp(&pid, argv_ptrs_[0], &actions_, &attr_, argv_ptrs_.data(), env_ptrs_.data());
        if (rc != 0) throw std::runtime_error("cannot start " + argv_[0] + ": " + std::strerror(rc));
        return pid;
    }

private:
    static void check(int rc) {
        if (rc != 0) throw std::runtime_error(std::string("posix_spawn setup: ") + std::strerror(rc));
    }
    std::vector<std::string> argv_;
    std::vector<std::string> env_;
    std::vector<char*> argv_ptrs_;
    std::vector<char*> env_ptrs_;
    posix_spawn_file_actions_t actions_{};
    posix_spawnattr_t attr_{};
};

struct Fd {
    int fd = -1;
    explicit Fd(int f) : fd(f) {}
    ~Fd() {
        if (fd >= 0) ::close(fd);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    void close() {
        if (fd >= 0) ::close(fd);
        fd = -1;
    }
};

}  // namespace

RunResult run(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
              std::chrono::seconds timeout) {
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) != 0) throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
    Fd read_end(pipefd[0]);
    Fd write_end(pipefd[1]);
    SpawnPlan plan(argv, env);
    plan.redirect_output(write_end.fd);
    const pid_t pid = plan.spawn();
    write_end.close();
    RunResult result;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    bool timed_out = false;
    char buf[4096];
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            timed_out = true;
            ::kill(pid, SIGKILL);
            break;
        }
        pollfd p{read_end.fd, POLLIN, 0};
        int r = ::poll(&p, 1, static_cast<int>(left.count()));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) continue;
        ssize_t n = ::read(read_end.fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        result.output.append(buf, static_cast<std::size_t>(n));
    }
    read_end.close();
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    result.exit_code = (!timed_out && WIFEXITED(status)) ? WEXITSTATUS(status) : -1;
    if (timed_out) result.output += "\n[timed out]\n";
    return result;
}

RunResult sh(const std::string& command, std::chrono::seconds timeout) {
    return run({"bash", "-c", command}, {}, timeout);
}

Child::Child(const std::vector<std::string>& argv, const std::filesystem::path& log_file,
             const std::map<std::string, std::string>& env) {
    Fd log(::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    if (log.fd < 0) throw std::runtime_error("cannot open " + log_file.string() + ": " + std::strerror(errno));
    SpawnPlan plan(argv, env);
    plan.redirect_output(log.fd);
    plan.own_process_group();
    pid_ = plan.spawn();
}

bool Child::running() {
    if (reaped_) return false;
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
        reaped_ = true;
        status_ = status;
        return false;
    }
    return true;
}

void Child::kill(int signal) {
    if (!reaped_) ::kill(pid_, signal);
}

void Child::kill_group(int signal) {
    if (!reaped_) ::kill(-pid_, signal);
}

int Child::wait(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (running()) {
        if (std::chrono::steady_clock::now() > deadline) return -1;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return WIFEXITED(status_) ? WEXITSTATUS(status_) : -1;
}

Child::~Child() {
    if (!running()) return;
    kill(SIGTERM);
    if (wait(std::chrono::seconds(10)) == -1 && running()) {
        kill(SIGKILL);
        wait(std::chrono::seconds(5));
    }
}

double process_cpu_seconds(int pid) {
    if (pid == 0) {
        rusage ru{};
        ::getrusage(RUSAGE_SELF, &ru);
        return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
               static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    }
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    const std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto close = stat.rfind(')');  // the command name may hold spaces and parentheses
    if (close == std::string::npos || close + 2 > stat.size()) return 0;
    std::istringstream fields(stat.substr(close + 2));
    std::string f;
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && fields >> f; ++i) {  // fields 14 and 15: utime, stime (clock ticks)
        if (i == 14) utime = std::stoull(f);
        if (i == 15) stime = std::stoull(f);
    }
    return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

std::filesystem::path make_temp_dir(const std::string& prefix) {
    std::string tmpl = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    return tmpl;
}

std::string read_file(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::uint16_t free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) throw std::runtime_error("socket: " + std::string(std::strerror(errno)));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
    ::close(fd);
    if (!ok) throw std::runtime_error("no free loopback port: " + std::string(std::strerror(errno)));
    return ntohs(addr.sin_port);
}

bool loopback_accepting(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
}

}  // namespace testing_support
