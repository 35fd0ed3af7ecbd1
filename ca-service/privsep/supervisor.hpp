#pragma once
// The supervisor: what `ca-service --config FILE` runs. It binds the listener, makes the
// front/signer socketpair, starts the signer and then the front (each a fresh exec of this
// binary with --role), and restarts either when it dies:
//   - the front dying costs nothing on the record: the signer keeps running, and answers
//     meant for the dead front are dropped by the next one (it never sent their ids);
//   - the signer dying is told to the front (SignerDown, written into the signer's end of
//     the pair), which answers 503 signer_unavailable with the reason until the next
//     signer's hello; requests queued for the dead signer carry its epoch and are dropped.
// A role that fails before it is first ready stops the whole service (exit 1, its message
// on stderr): a wrong PIN or a bad key file is the operator's to fix, not to retry.

#include <filesystem>

namespace ca::privsep {

inline constexpr int kChannelFd = 3;   // in a role: its end of the pair
inline constexpr int kReadyFd = 4;     // in a role: one byte when serving
inline constexpr int kListenerFd = 5;  // in the front: the listening socket

int run_supervisor(const std::filesystem::path& config_file);

}  // namespace ca::privsep
