#include "support/cpu_time.hpp"

#include "support/process.hpp"

#include <utility>

namespace bench {

using testing_support::process_cpu_seconds;

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
