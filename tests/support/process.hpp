#pragma once
// Running the project's real binaries and scripts from tests.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace testing_support {

struct RunResult {
    int exit_code = -1;  // -1 when killed by a signal or timed out
    std::string output;  // stdout and stderr, interleaved
};

// Runs argv (no shell), with extra environment variables, capturing output; kills it
// after `timeout`.
RunResult run(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env = {},
              std::chrono::seconds timeout = std::chrono::seconds(120));

// A shell one-liner, for pipelines in tests (bash -c).
RunResult sh(const std::string& command, std::chrono::seconds timeout = std::chrono::seconds(120));

// A child process that runs until stopped (servers under test).
class Child {
public:
    Child(const std::vector<std::string>& argv, const std::filesystem::path& log_file,
          const std::map<std::string, std::string>& env = {});
    ~Child();  // SIGTERM, then SIGKILL after a grace period
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;

    int pid() const { return pid_; }
    bool running();
    void kill(int signal);
    void kill_group(int signal);  // the child and everything it forked
    int wait(std::chrono::milliseconds timeout);  // exit code, or -1

private:
    int pid_ = -1;
    int status_ = 0;
    bool reaped_ = false;
};

// CPU seconds (user + system, all threads) used so far by this process, or by process `pid`
// (read from /proc; 0 when it cannot be read, e.g. the process has exited).
double process_cpu_seconds(int pid = 0);

std::filesystem::path make_temp_dir(const std::string& prefix);

// A loopback TCP port free at this moment, for servers that cannot bind port 0 and report
// it (another process may take it before they bind: callers retry on a failed start).
std::uint16_t free_port();
// A server accepts TCP connections on 127.0.0.1:`port` (readiness of a child that cannot
// report its port).
bool loopback_accepting(std::uint16_t port);
std::string read_file(const std::filesystem::path& p);

}  // namespace testing_support
