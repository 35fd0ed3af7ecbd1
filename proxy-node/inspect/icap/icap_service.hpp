#pragma once
// External inspection engines over ICAP (RFC 3507): each [icap.NAME] service is an
// Inspector that an EngineChain asks after the integrated rule set.
//
// Per service: OPTIONS at start and again per Options-TTL (Methods, Preview, Transfer-*,
// Max-Connections, ISTag, Allow: 204); a service whose OPTIONS fail is down (its messages
// fail at once, by its on_error) and OPTIONS is retried every retry_interval until it
// answers, when it is used again. Each message is one REQMOD or RESPMOD transaction on a
// pooled persistent connection (at most min(max_connections, Max-Connections)): the HTTP
// heads the node knows, then the decoded body streamed to the engine as the relay feeds it
// (a Preview first when the service wants one, ending in ieof when it holds the whole
// body). Answers: 204, or a 200 that returns the message unmodified, allow; a REQMOD 200
// with a modified request allows with that request to send upstream instead
// (Verdict::rewrite; the relay refuses it when the client's request already started to go
// out); a 200 carrying another HTTP response blocks with that response as the client's
// page (the engine's block page; the note names the ISTag and the threat from
// X-Infection-Found, X-Virus-ID or X-Violations-Found); anything else, a timeout, a
// closed connection or a malformed answer is a failure that the service's on_error decides (inspect/engine_chain.hpp).
//
// Transactions run on one thread of their own ("icap"), so a slow engine never holds a
// relay's thread; verdicts are delivered from it (the relays re-post them).

#include "config/node_config.hpp"
#include "inspect/inspector.hpp"
#include "log/connection_log.hpp"

#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace asio {
class io_context;
}

namespace proxy::icap {

// What /healthz and /metrics show of one service.
struct ServiceStatus {
    std::string name, url;
    bool up = false;
    std::string istag;          // from the last OPTIONS
    std::string last_error;     // why it is down, or the last failed transaction
    unsigned max_connections = 0, open_connections = 0;
    std::uint64_t allowed = 0, allowed_204 = 0, blocked = 0, failed = 0;  // transactions by outcome
    std::uint64_t rewritten = 0;  // a modified request to send upstream in its place
    std::uint64_t errors_connect = 0, errors_timeout = 0, errors_protocol = 0, errors_status = 0;
    std::uint64_t latency_us_sum = 0, latency_count = 0;  // from the message's end to the answer
};

class Service;

class IcapEngines {
public:
    // The services of `config.icap`, not yet started.
    IcapEngines(const NodeConfig& config, ConnectionLog& log);
    ~IcapEngines();  // stops the thread; open transactions fail
    IcapEngines(const IcapEngines&) = delete;
    IcapEngines& operator=(const IcapEngines&) = delete;

    // Starts the thread and each service's OPTIONS; waits until each has answered or
    // failed once (at most its connect + io timeouts), so the first messages do not fail
    // only because the node was faster than its first OPTIONS.
    void start();
    void stop();

    struct Entry {
        std::string name;
        std::shared_ptr<const inspect::Inspector> inspector;
        bool on_error_allow = false;
        std::string rule;  // the rule its blocks carry: "icap.NAME"
    };
    std::vector<Entry> engines() const;
    std::vector<ServiceStatus> status() const;

private:
    std::unique_ptr<asio::io_context> io_;
    std::vector<std::shared_ptr<Service>> services_;
    std::thread thread_;
};

// Prometheus text for the services (proxy_icap_*).
std::string render_prometheus(const std::vector<ServiceStatus>& services);

}  // namespace proxy::icap
