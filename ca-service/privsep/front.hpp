#pragma once
// The front: the mTLS listener, HTTP, JSON. It holds no PIN, no HSM session and no audit
// key: it loads its TLS material, confines itself (see sandbox.hpp), and asks the signer.

#include "config/service_config.hpp"

namespace ca::privsep {

struct FrontOptions {
    int channel_fd = -1;   // its end of the socketpair
    int listener_fd = -1;  // bound and listening, from the supervisor
    int ready_fd = -1;     // one byte once serving, then closed; -1: none
};

// Serves until SIGTERM/SIGINT (requests already read get their answers). Throws with the
// reason when it cannot start.
int run_front(ServiceConfig config, FrontOptions options);

}  // namespace ca::privsep
