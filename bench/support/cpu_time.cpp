#include "support/cpu_time.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <utility>

namespace bench {

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

CpuMeter::CpuMeter(std::vector<int> pids) : pids_(std::move(pids)) {
    for (int pid : pids_) start_cpu_.push_back(process_cpu_seconds(pid));
    start_ = std::chrono::steady_clock::now();
}

std::vector<double> CpuMeter::us_per_op(double rate) const {
    const double operations = rate * std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    std::vector<double> out;
    if (operations <= 0) return out;
    for (std::size_t i = 0; i < pids_.size(); ++i)
        out.push_back((process_cpu_seconds(pids_[i]) - start_cpu_[i]) * 1e6 / operations);
    return out;
}

}  // namespace bench
