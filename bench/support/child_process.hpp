#pragma once
// A service the benchmark runs beside itself (ca-service, proxy-node), started with
// posix_spawn: the benchmark already has threads, and a forked child that allocates
// before exec can deadlock on a lock another thread held.

#include <filesystem>
#include <string>
#include <vector>

#include <sys/types.h>

namespace bench {

class ChildProcess {
public:
    // Runs argv[0] (a path) with stdout and stderr to `log` (truncated); throws
    // std::runtime_error when it cannot be started.
    ChildProcess(const std::vector<std::string>& argv, const std::filesystem::path& log);
    ~ChildProcess();  // SIGTERM, then waits
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;

    bool running();

private:
    pid_t pid_ = -1;
    bool reaped_ = false;
};

}  // namespace bench
