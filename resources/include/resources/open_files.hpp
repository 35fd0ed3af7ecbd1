#pragma once
// The open-file (descriptor) budget of a server process. Every connection costs descriptors;
// running out mid-flight fails accept() and socket() in ways clients see as random resets
// (and, in a naive accept loop, spins a CPU), so each service raises its soft limit at start
// and sizes its connection limit to what fits.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace resources {

struct OpenFileLimit {
    std::uint64_t started_with = 0;  // the soft limit the process was started with
    std::uint64_t soft = 0;          // the soft limit now: the hard limit, when the raise was allowed
    std::uint64_t hard = 0;
};

// Raises the soft RLIMIT_NOFILE to the hard limit, which needs no privilege. Throws
// std::system_error when the limit cannot be read; a refused raise leaves `soft` as it was.
OpenFileLimit raise_open_file_limit();

struct ConnectionBudget {
    std::size_t max_connections = 0;  // what the service allows at once
    std::string warning;              // why that is fewer than configured; empty when it is not
};

// The connections that fit in `files.soft` descriptors, each taking `per_connection`, after
// `reserved` for listeners, logs, the HSM and threads: `configured` when they all fit, else
// as many as do, with a warning naming `setting` and what to raise. Throws
// std::runtime_error when not even one fits.
ConnectionBudget fit_connections(const OpenFileLimit& files, std::string_view setting, std::size_t configured,
                                 unsigned per_connection, std::uint64_t reserved);

}  // namespace resources
