#pragma once
// The TLS alert a peer sent during a handshake (e.g. a client rejecting the forged
// certificate with unknown_ca), read from the decrypted records via OpenSSL's message
// callback, so that the proxy can tell a pinning client from a broken connection.

#include <openssl/ssl.h>

#include <string>

namespace proxy::tls {

struct ReceivedAlert {
    int description = -1;  // RFC 8446 AlertDescription; -1 when none was received
};

// Records alerts received on `ssl` into `seen` until stop_watching_alerts(); `seen` must
// outlive that.
void watch_received_alerts(SSL& ssl, ReceivedAlert& seen);
void stop_watching_alerts(SSL& ssl);

// The RFC name ("unknown_ca", "bad_certificate", ...), or "alert_<n>".
std::string alert_name(int description);

}  // namespace proxy::tls
