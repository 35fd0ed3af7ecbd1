#include "resources/open_files.hpp"

#include <sys/resource.h>

#include <cerrno>
#include <stdexcept>
#include <system_error>

namespace resources {

namespace {

const char* const kHowToRaise =
    "raise the open-file limit (LimitNOFILE= in the systemd unit, or ulimit -n before starting)";

}  // namespace

OpenFileLimit raise_open_file_limit() {
    rlimit now{};
    if (::getrlimit(RLIMIT_NOFILE, &now) != 0)
        throw std::system_error(errno, std::generic_category(), "reading the open-file limit (RLIMIT_NOFILE)");
    OpenFileLimit out{now.rlim_cur, now.rlim_cur, now.rlim_max};
    if (now.rlim_cur < now.rlim_max) {
        rlimit raised{now.rlim_max, now.rlim_max};
        if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) out.soft = now.rlim_max;
    }
    return out;
}

ConnectionBudget fit_connections(const OpenFileLimit& files, std::string_view setting, std::size_t configured,
                                 unsigned per_connection, std::uint64_t reserved) {
    if (per_connection == 0) throw std::invalid_argument("fit_connections: per_connection must be at least 1");
    const std::uint64_t fit = files.soft > reserved ? (files.soft - reserved) / per_connection : 0;
    if (fit > 0 && fit >= configured) return {configured, ""};
    const std::string each = "each connection takes " + std::to_string(per_connection) +
                             (per_connection == 1 ? " descriptor" : " descriptors") + " and " +
                             std::to_string(reserved) + " are kept for the service's own files and sockets";
    if (fit == 0)
        throw std::runtime_error("the open-file limit of " + std::to_string(files.soft) +
                                 " descriptors leaves no room for connections (" + each + "); " + kHowToRaise);
    return {static_cast<std::size_t>(fit),
            std::string(setting) + " is " + std::to_string(configured) + " but the open-file limit of " +
                std::to_string(files.soft) + " descriptors leaves room for " + std::to_string(fit) + " (" + each +
                "); allowing " + std::to_string(fit) + " connections at once. To allow more, " + kHowToRaise};
}

}  // namespace resources
