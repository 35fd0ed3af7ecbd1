#pragma once
// The signer: the only process of the ca-service that holds the HSM PIN, HSM sessions and
// the audit log. It has no network socket; it serves the front over the channel, re-checking
// everything itself: the client certificate against the service CA, revocation, policy,
// rate limits, the certificate profile, and the audit record before every answer.

#include "config/service_config.hpp"

#include <cstdint>

namespace ca::privsep {

struct SignerOptions {
    int channel_fd = -1;     // its end of the socketpair
    std::uint32_t epoch = 0;  // from the supervisor: requests stamped otherwise are dropped
    int ready_fd = -1;        // one byte once serving, then closed; -1: none
};

// Runs until SIGTERM/SIGINT, then answers what it has taken, writes the stop record and
// closes the audit log. Throws (with the reason) when it cannot start.
int run_signer(const ServiceConfig& config, SignerOptions options);

}  // namespace ca::privsep
