#include "inspect/verdict_wait.hpp"

#include "inspect/relay_policy.hpp"

#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <functional>
#include <memory>
#include <mutex>
#include <optional>

// GCC 12 reports a false -Wmismatched-new-delete on coroutine frames (see inspecting_relay.cpp).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace proxy::inspect {

using asio::awaitable;

namespace {

// The engine's final verdict. An engine that answers inline (the rule set) costs no
// suspension and no timer; one that answers later, from any thread, wakes this coroutine
// through a timer on its own executor, or the timer's deadline (inspection.verdict_timeout_ms)
// ends the wait and the engine says what its silence means (Inspection::timed_out).
struct PendingVerdict {
    std::mutex mu;
    std::optional<Verdict> verdict;
    std::optional<asio::steady_timer> wake;  // made only when the verdict is not there at once
};

}  // namespace

awaitable<Verdict> final_verdict(Inspection& inspection, std::chrono::milliseconds timeout) {
    const asio::any_io_executor ex = co_await asio::this_coro::executor;
    auto pending = std::make_shared<PendingVerdict>();
    inspection.finish([pending](Verdict v) {
        std::lock_guard lock(pending->mu);
        if (!pending->wake) {
            pending->verdict = std::move(v);
            return;
        }
        asio::post(pending->wake->get_executor(), [pending, v = std::move(v)]() mutable {
            pending->verdict = std::move(v);
            pending->wake->cancel();
        });
    });
    {
        std::lock_guard lock(pending->mu);
        if (!pending->verdict) pending->wake.emplace(ex, std::chrono::steady_clock::now() + timeout);
    }
    asio::error_code ec;
    while (!pending->verdict) {
        co_await pending->wake->async_wait(asio::redirect_error(asio::use_awaitable, ec));
        if (!ec && !pending->verdict) {
            // The deadline passed without an answer; a late one is ignored.
            Verdict late = fail_closed(inspection.timed_out());
            co_return late;
        }
    }
    Verdict out = fail_closed(std::move(*pending->verdict));
    co_return out;
}

namespace {

// Back-pressure from a slow engine (Inspection::ready): waits until it takes more of the
// body, woken from its thread through a timer on this executor, or until `timeout` passes
// (then the relay goes on; the engine's own limits decide what its lag means).
struct ReadyWait {
    explicit ReadyWait(const asio::any_io_executor& ex) : timer(ex) {}
    asio::steady_timer timer;
    bool woken = false;  // set on the relay's executor
};

}  // namespace

awaitable<void> engine_ready(Inspection& inspection, std::chrono::milliseconds timeout) {
    // The common case (the rule set, an engine keeping up) costs no timer: ask first with
    // a wake that does nothing; one that is not ready is asked again with a real wake
    // (which replaces the first, and sees a backlog that drained meanwhile).
    static const std::function<void()> kNoWake = [] {};
    if (inspection.ready(kNoWake)) co_return;
    const asio::any_io_executor ex = co_await asio::this_coro::executor;
    std::shared_ptr<ReadyWait> wait;
    asio::error_code ec;
    for (;;) {
        wait = std::make_shared<ReadyWait>(ex);
        const bool now = inspection.ready([wait] {
            asio::post(wait->timer.get_executor(), [wait] {
                wait->woken = true;
                wait->timer.cancel();
            });
        });
        if (now) co_return;
        wait->timer.expires_after(timeout);
        co_await wait->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        if (!wait->woken) co_return;
    }
}

}  // namespace proxy::inspect
