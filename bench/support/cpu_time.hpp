#pragma once
// CPU time used by a process, for per-operation CPU costs: steadier than rates on a shared
// machine, since idle time and waiting do not count (a slow spell of the machine still
// raises them, so compare figures from the same run).

namespace bench {

// CPU seconds (user + system, all threads) used so far by this process, or by process `pid`
// (read from /proc; 0 when it cannot be read, e.g. the process has exited).
double process_cpu_seconds(int pid = 0);

}  // namespace bench
