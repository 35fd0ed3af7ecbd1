#include "websocket/message_inflater.hpp"

namespace proxy::websocket {

MessageInflater::MessageInflater() { ready_ = inflateInit2(&z_, -15) == Z_OK; }

MessageInflater::~MessageInflater() {
    if (ready_) inflateEnd(&z_);
}

MessageInflater::Result MessageInflater::run(std::span<const std::uint8_t> in, std::uint64_t limit,
                                             const Sink& sink) {
    if (!ready_) return Result::corrupt;
    z_.next_in = const_cast<Bytef*>(in.data());
    z_.avail_in = static_cast<uInt>(in.size());
    for (;;) {
        z_.next_out = out_.data();
        z_.avail_out = static_cast<uInt>(out_.size());
        const int rc = inflate(&z_, Z_SYNC_FLUSH);
        const std::size_t produced = out_.size() - z_.avail_out;
        if (rc != Z_OK && rc != Z_BUF_ERROR && rc != Z_STREAM_END) return Result::corrupt;
        if (produced > 0) {
            if (message_bytes_ + produced > limit) return Result::too_big;
            message_bytes_ += produced;
            sink({out_.data(), produced});
        }
        if (rc == Z_STREAM_END) {
            // A final deflate block (BFINAL): the sender ends its stream; the next message
            // starts a new one (allowed when the sender does not take over its context).
            if (inflateReset(&z_) != Z_OK) return Result::corrupt;
            if (z_.avail_in == 0) return Result::ok;
            continue;
        }
        if (z_.avail_out != 0 || rc == Z_BUF_ERROR) return Result::ok;
    }
}

MessageInflater::Result MessageInflater::feed(std::span<const std::uint8_t> in, std::uint64_t limit,
                                              const Sink& sink) {
    return run(in, limit, sink);
}

MessageInflater::Result MessageInflater::end_message(std::uint64_t limit, const Sink& sink) {
    static constexpr std::uint8_t kTail[] = {0x00, 0x00, 0xff, 0xff};
    const Result r = run(kTail, limit, sink);
    message_bytes_ = 0;
    return r;
}

}  // namespace proxy::websocket
