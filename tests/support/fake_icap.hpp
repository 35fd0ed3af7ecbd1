#pragma once
// An ICAP server of the tests' own that misbehaves on purpose, for the ICAP client's
// failure paths: it answers OPTIONS properly (unless told not to), reads each REQMOD or
// RESPMOD request to the end of its body, then answers as `Behaviour` says. Blocking
// sockets, one thread per connection, bound to 127.0.0.1 port 0.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

namespace testing_support {

class FakeIcap {
public:
    enum class Behaviour {
        allow_204,         // a well-behaved engine that finds nothing
        block_page,        // 200 with its own 403 page and X-Infection-Found
        close_mid_answer,  // a 200 head, part of the encapsulated response, then the connection closed
        garbage,           // bytes that are not ICAP
        stall,             // reads the request, never answers
        lying_encapsulated,  // Encapsulated offsets that do not match the HTTP head sent
        status_500,        // ICAP/1.0 500 Server Error
        options_refused,   // OPTIONS answered 404 (the service is then down)
        // A DLP engine: REQMOD answered with the request modified (each "secret" in its body
        // replaced by "[redacted]", an "X-Redacted: yes" field added); RESPMOD with 204.
        redact,
        redact_elsewhere,  // as redact, but the request's URL moved to another server
    };
    explicit FakeIcap(Behaviour b);
    ~FakeIcap();
    FakeIcap(const FakeIcap&) = delete;
    FakeIcap& operator=(const FakeIcap&) = delete;

    std::uint16_t port() const;
    std::string url() const { return "icap://127.0.0.1:" + std::to_string(port()) + "/fake"; }
    void set(Behaviour b);
    unsigned transactions() const;  // REQMOD/RESPMOD requests read so far

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

}  // namespace testing_support
