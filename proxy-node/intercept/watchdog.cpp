#include "intercept/watchdog.hpp"

namespace proxy {

void Watchdog::watch(asio::ip::tcp::socket* socket) {
    for (auto& s : sockets_)
        if (s == nullptr || s == socket) {
            s = socket;
            return;
        }
}

void Watchdog::phase(Clock::duration limit) {
    idle_mode_ = false;
    deadline_ = Clock::now() + limit;
    if (deadline_ < scheduled_) schedule();
}

void Watchdog::idle(Clock::duration limit) {
    idle_mode_ = true;
    idle_limit_ = limit;
    touch();
    if (due() < scheduled_) schedule();
}

void Watchdog::stop() {
    stopped_ = true;
    asio::error_code ec;
    timer_.cancel();
}

void Watchdog::schedule() {
    if (stopped_) return;
    scheduled_ = due();
    timer_.expires_at(scheduled_);
    const unsigned generation = ++generation_;
    timer_.async_wait([self = shared_from_this(), generation](const asio::error_code&) { self->on_timer(generation); });
}

void Watchdog::on_timer(unsigned generation) {
    // A later schedule() replaced this wait; its own handler will decide.
    if (stopped_ || generation != generation_) return;
    scheduled_ = Clock::time_point::max();
    if (Clock::now() < due()) {
        schedule();  // the deadline moved on (a new phase, or activity while idle)
        return;
    }
    expired_ = true;
    for (auto* s : sockets_)
        if (s != nullptr) tls::abort_socket(*s);
}

}  // namespace proxy
