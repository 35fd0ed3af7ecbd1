#pragma once
// Waiting, in a relay's coroutine, for what an engine answers from its own thread: its
// final verdict (Inspection::finish), and its readiness for more body (Inspection::ready).
// Used by every relay that inspects (inspect/inspecting_relay, mail/smtp_relay).

#include "inspect/inspector.hpp"

#include <asio/awaitable.hpp>

#include <chrono>

namespace proxy::inspect {

// The engine's final verdict, mapped by fail_closed (inspect/relay_policy.hpp). An engine
// that answers inline (the rule set) costs no suspension and no timer; one that answers
// later, from any thread, wakes this coroutine through a timer on its own executor, or the
// deadline (inspection.verdict_timeout_ms) ends the wait and the engine says what its
// silence means (Inspection::timed_out).
asio::awaitable<Verdict> final_verdict(Inspection& inspection, std::chrono::milliseconds timeout);

// Back-pressure from a slow engine (Inspection::ready): waits until it takes more of the
// body, or until `timeout` passes (then the relay goes on; the engine's own limits decide
// what its lag means).
asio::awaitable<void> engine_ready(Inspection& inspection, std::chrono::milliseconds timeout);

}  // namespace proxy::inspect
