#include "privsep/sandbox.hpp"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <vector>

namespace ca::privsep {

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

std::string errno_text() { return std::strerror(errno); }

struct FilterFree {
    void operator()(void* ctx) const { seccomp_release(static_cast<scmp_filter_ctx>(ctx)); }
};

// What the front does once confined: wait on epoll and timers, accept, read and write
// sockets it was given or accepted, allocate memory, run and synchronise its threads,
// read the clock and randomness, take signals, and exit.
constexpr const char* kAllowed[] = {
    "read", "write", "readv", "writev", "pread64", "close", "fstat", "newfstatat", "statx", "lseek",
    "mmap", "munmap", "mprotect", "mremap", "madvise", "brk",
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigtimedwait", "sigaltstack", "restart_syscall",
    "epoll_wait", "epoll_pwait", "epoll_pwait2", "epoll_ctl", "poll", "ppoll", "select", "pselect6",
    "eventfd2", "timerfd_settime", "timerfd_gettime", "ioctl", "fcntl",
    "accept", "accept4", "recvfrom", "recvmsg", "sendto", "sendmsg", "sendmmsg", "recvmmsg", "shutdown",
    "setsockopt", "getsockopt", "getsockname", "getpeername",
    "futex", "set_robust_list", "get_robust_list", "rseq", "membarrier", "sched_yield", "sched_getaffinity",
    "gettid", "getpid", "getuid", "geteuid", "getgid", "getegid", "tgkill", "exit", "exit_group",
    "getrandom", "clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep", "gettimeofday",
    "prlimit64", "getrlimit", "uname",
};

// AddressSanitizer's leak check stops the world with ptrace from a helper and reads
// /proc/self: allowed in sanitizer builds only, which are never deployed.
constexpr const char* kSanitizerAllowed[] = {
    "ptrace", "wait4", "waitid", "prctl", "getdents", "getdents64", "readlink", "readlinkat", "getppid", "kill",
    "process_vm_readv", "pipe", "pipe2", "dup", "dup2", "dup3", "open", "openat", "access", "faccessat",
    "faccessat2", "stat", "lstat", "setrlimit", "sysinfo", "sched_setaffinity",
};

void add(scmp_filter_ctx ctx, const char* name, std::uint32_t action) {
    const int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) return;  // not a system call on this architecture
    if (seccomp_rule_add(ctx, action, nr, 0) != 0)
        throw std::runtime_error(std::string("seccomp: cannot add a rule for ") + name);
}

}  // namespace

bool drop_to_user(const std::string& user) {
    if (::geteuid() != 0) return false;
    errno = 0;
    const passwd* pw = ::getpwnam(user.c_str());
    if (pw == nullptr)
        throw std::runtime_error("front.user: no user '" + user + "' on this system; create it or name another");
    if (pw->pw_uid == 0) throw std::runtime_error("front.user: '" + user + "' is root");
    const uid_t uid = pw->pw_uid;
    const gid_t gid = pw->pw_gid;
    if (::setgroups(1, &gid) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0)
        throw std::runtime_error("cannot drop to user '" + user + "': " + errno_text());
    if (::setuid(0) == 0 || ::geteuid() != uid || ::getegid() != gid)
        throw std::runtime_error("dropping to user '" + user + "' did not stick");
    // A process that changed its credentials loses the parent-death signal: set it again.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    return true;
}

void confine_front() {
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) throw std::runtime_error("PR_SET_NO_NEW_PRIVS: " + errno_text());
    std::unique_ptr<void, FilterFree> ctx(seccomp_init(SCMP_ACT_KILL_PROCESS));
    if (!ctx) throw std::runtime_error("seccomp_init failed");
    auto* c = static_cast<scmp_filter_ctx>(ctx.get());
    if (seccomp_attr_set(c, SCMP_FLTATR_CTL_TSYNC, 1) != 0) throw std::runtime_error("seccomp: cannot sync threads");
    for (const char* name : kAllowed) add(c, name, SCMP_ACT_ALLOW);
    if (kSanitized) {
        for (const char* name : kSanitizerAllowed) add(c, name, SCMP_ACT_ALLOW);
        add(c, "clone", SCMP_ACT_ALLOW);
    } else {
        // Threads only: a clone without CLONE_THREAD would be a new process.
        if (seccomp_rule_add(c, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                             SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD)) != 0)
            throw std::runtime_error("seccomp: cannot add the clone rule");
        // Files: refused, not fatal (a library probing for a file copes with EACCES).
        add(c, "open", SCMP_ACT_ERRNO(EACCES));
        add(c, "openat", SCMP_ACT_ERRNO(EACCES));
    }
    // clone3's flags sit in memory a filter cannot read: ENOSYS makes glibc use clone.
    add(c, "clone3", SCMP_ACT_ERRNO(ENOSYS));
    if (seccomp_load(c) != 0) throw std::runtime_error("seccomp_load failed: " + errno_text());
}

int sandbox_self_test(const std::string& what) {
    confine_front();
    if (what == "ok") {
        std::cout << "confined, still running\n";
        return 0;
    }
    if (what == "openat") {
        const int fd = ::open("/etc/hostname", O_RDONLY | O_CLOEXEC);
        std::cout << "open: " << (fd < 0 ? errno_text() : "opened") << "\n";
        return fd < 0 ? 0 : 1;
    }
    if (what == "socket") {
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        std::cout << "socket: " << fd << "\n";
        return 1;
    }
    if (what == "execve") {
        char* const argv[] = {const_cast<char*>("/bin/true"), nullptr};
        ::execv("/bin/true", argv);
        std::cout << "execve: " << errno_text() << "\n";
        return 1;
    }
    std::cerr << "unknown self-test '" << what << "'\n";
    return 2;
}

}  // namespace ca::privsep
