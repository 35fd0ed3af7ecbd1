#include "support/h2_client.hpp"

#include <nghttp2/nghttp2.h>

#include <openssl/err.h>

#include <stdexcept>
#include <vector>

namespace bench {

struct H2Client::State {
    SSL* ssl = nullptr;
    long long bytes = 0;
    int closed = 0;
    bool failed = false;
};

namespace {

using State = H2Client::State;

ssize_t send_all(nghttp2_session*, const std::uint8_t* data, std::size_t length, int, void* user_data) {
    auto& s = *static_cast<State*>(user_data);
    std::size_t done = 0;
    if (SSL_write_ex(s.ssl, data, length, &done) != 1) {
        ERR_clear_error();
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return static_cast<ssize_t>(done);
}

int on_data(nghttp2_session*, std::uint8_t, std::int32_t, const std::uint8_t*, std::size_t len, void* user_data) {
    static_cast<State*>(user_data)->bytes += static_cast<long long>(len);
    return 0;
}

int on_header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name, std::size_t namelen,
              const std::uint8_t* value, std::size_t valuelen, std::uint8_t, void* user_data) {
    if (frame->hd.type == NGHTTP2_HEADERS && std::string_view(reinterpret_cast<const char*>(name), namelen) == ":status" &&
        std::string_view(reinterpret_cast<const char*>(value), valuelen) != "200")
        static_cast<State*>(user_data)->failed = true;
    return 0;
}

int on_close(nghttp2_session*, std::int32_t, std::uint32_t error_code, void* user_data) {
    auto& s = *static_cast<State*>(user_data);
    ++s.closed;
    if (error_code != NGHTTP2_NO_ERROR) s.failed = true;
    return 0;
}

}  // namespace

H2Client::H2Client(SSL* ssl, std::string authority)
    : ssl_(ssl), authority_(std::move(authority)), state_(std::make_unique<State>()) {
    state_->ssl = ssl_;
    nghttp2_session_callbacks* cb = nullptr;
    if (nghttp2_session_callbacks_new(&cb) != 0) throw std::runtime_error("nghttp2 callbacks");
    nghttp2_session_callbacks_set_send_callback(cb, send_all);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
    const int rv = nghttp2_session_client_new(&session_, cb, state_.get());
    nghttp2_session_callbacks_del(cb);
    if (rv != 0) throw std::runtime_error("nghttp2 session");
    // Windows as large as a browser's, so flow control does not bound the bulk rate.
    const nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 16 << 20},
                                               {NGHTTP2_SETTINGS_ENABLE_PUSH, 0}};
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, 2);
    nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, 16 << 20);
}

H2Client::~H2Client() { nghttp2_session_del(session_); }

long long H2Client::get(const std::string& path, int streams) {
    State& s = *state_;
    s.bytes = 0;
    s.closed = 0;
    s.failed = false;
    const auto nv = [](const char* n, const std::string& v) {
        return nghttp2_nv{reinterpret_cast<std::uint8_t*>(const_cast<char*>(n)),
                          reinterpret_cast<std::uint8_t*>(const_cast<char*>(v.data())), std::char_traits<char>::length(n),
                          v.size(), NGHTTP2_NV_FLAG_NONE};
    };
    const std::string get = "GET", https = "https";
    const nghttp2_nv headers[] = {nv(":method", get), nv(":scheme", https), nv(":authority", authority_),
                                  nv(":path", path)};
    for (int i = 0; i < streams; ++i)
        if (nghttp2_submit_request(session_, nullptr, headers, 4, nullptr, nullptr) < 0) return -1;
    std::vector<std::uint8_t> buf(64 * 1024);
    while (s.closed < streams) {
        if (nghttp2_session_send(session_) != 0) return -1;
        std::size_t n = 0;
        if (SSL_read_ex(ssl_, buf.data(), buf.size(), &n) != 1) {
            ERR_clear_error();
            return -1;
        }
        if (nghttp2_session_mem_recv(session_, buf.data(), n) < 0) return -1;
    }
    if (nghttp2_session_send(session_) != 0) return -1;  // window updates, acks
    return s.failed ? -1 : s.bytes;
}

}  // namespace bench
