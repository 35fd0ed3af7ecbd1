#pragma once
// Confinement of the front: after it has loaded its TLS material and before it reads a byte
// from the network. Its own unprivileged user (when started as root), no new privileges,
// and a seccomp filter that allows only the system calls an event loop with TLS needs:
// no socket, connect, bind, execve, fork, ptrace, open (openat fails with EACCES, which
// libraries take as a missing file), and anything else kills the process.

#include <string>

namespace ca::privsep {

// As root: setgroups to the user's group alone, setgid, setuid; checked afterwards (root
// cannot be regained). Not root: nothing to drop, returns false. Throws std::runtime_error
// when the user does not exist or a step fails.
bool drop_to_user(const std::string& user);

// PR_SET_NO_NEW_PRIVS, then the filter, for every thread of the process. Throws on failure.
void confine_front();

// For tests: confine this process, then make one system call the filter forbids
// ("socket", "execve", "openat" and "ok" for none); returns only when the filter let it
// through (the exit status says what happened).
int sandbox_self_test(const std::string& what);

}  // namespace ca::privsep
