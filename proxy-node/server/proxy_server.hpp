#pragma once
// The running node: one single-threaded io_context per worker thread (no locks on the
// connection path), one accepting loop handing connections round-robin to the workers,
// the management listener, and graceful shutdown on SIGTERM/SIGINT (stop accepting, let
// open connections finish for up to limits.drain_timeout, exit).

#include "intercept/proxy_context.hpp"

namespace proxy {

// Runs until a stop signal; returns the process exit code.
int run_proxy(ProxyContext& ctx);

}  // namespace proxy
