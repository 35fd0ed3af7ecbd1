#pragma once
// CPU time used by a process, for per-operation CPU costs: steadier than rates on a shared
// machine, since idle time and waiting do not count (a slow spell of the machine still
// raises them, so compare figures from the same run).

#include <chrono>
#include <vector>

namespace bench {

// CPU of some processes over one phase, from construction: microseconds of CPU per operation
// for each, given the phase's rate (operations per second; the wall time is the meter's own).
class CpuMeter {
public:
    explicit CpuMeter(std::vector<int> pids);  // 0: this process
    // One figure per pid, in order; empty when the rate is zero (nothing to divide by).
    std::vector<double> us_per_op(double rate) const;

private:
    std::vector<int> pids_;
    std::vector<double> start_cpu_;
    std::chrono::steady_clock::time_point start_;
};

}  // namespace bench
