#include "tls/alerts.hpp"

namespace proxy::tls {

namespace {

constexpr std::size_t kAlertBytes = 2;  // level, description

void on_message(int write_p, int, int content_type, const void* buf, std::size_t len, SSL*, void* arg) {
    if (write_p != 0 || content_type != SSL3_RT_ALERT || len < kAlertBytes || arg == nullptr) return;
    auto* seen = static_cast<ReceivedAlert*>(arg);
    if (seen->description < 0) seen->description = static_cast<const unsigned char*>(buf)[1];
}

}  // namespace

void watch_received_alerts(SSL& ssl, ReceivedAlert& seen) {
    SSL_set_msg_callback_arg(&ssl, &seen);
    SSL_set_msg_callback(&ssl, on_message);
}

void stop_watching_alerts(SSL& ssl) {
    SSL_set_msg_callback(&ssl, nullptr);
    SSL_set_msg_callback_arg(&ssl, nullptr);
}

std::string alert_name(int d) {
    switch (d) {
        case 0: return "close_notify";
        case 10: return "unexpected_message";
        case 20: return "bad_record_mac";
        case 22: return "record_overflow";
        case 40: return "handshake_failure";
        case 42: return "bad_certificate";
        case 43: return "unsupported_certificate";
        case 44: return "certificate_revoked";
        case 45: return "certificate_expired";
        case 46: return "certificate_unknown";
        case 47: return "illegal_parameter";
        case 48: return "unknown_ca";
        case 49: return "access_denied";
        case 50: return "decode_error";
        case 51: return "decrypt_error";
        case 70: return "protocol_version";
        case 71: return "insufficient_security";
        case 80: return "internal_error";
        case 86: return "inappropriate_fallback";
        case 90: return "user_canceled";
        case 109: return "missing_extension";
        case 110: return "unsupported_extension";
        case 112: return "unrecognized_name";
        case 113: return "bad_certificate_status_response";
        case 115: return "unknown_psk_identity";
        case 116: return "certificate_required";
        case 120: return "no_application_protocol";
        default: return "alert_" + std::to_string(d);
    }
}

}  // namespace proxy::tls
