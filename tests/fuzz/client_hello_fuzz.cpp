// libFuzzer entry: the ClientHello peek reads bytes from any client before anything is
// answered. Every byte string must give a status without crashing, reading past its input
// or hanging; a ClientHello that parses must parse the same from any longer input, and a
// prefix of it must ask for more or parse the same.

#include "tls/client_hello.hpp"

#include <cstddef>
#include <cstdint>
#include <span>

namespace {

using proxy::tls::ClientHello;
using proxy::tls::HelloStatus;

bool same(const ClientHello& a, const ClientHello& b) {
    return a.server_name == b.server_name && a.alpn == b.alpn && a.legacy_version == b.legacy_version &&
           a.supported_versions == b.supported_versions && a.cipher_suites == b.cipher_suites;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    constexpr std::size_t kMax = 16 * 1024;
    const std::span<const std::uint8_t> all(data, size);
    ClientHello whole;
    const HelloStatus status = proxy::tls::parse_client_hello(all, kMax, whole);
    if (status != HelloStatus::complete) return 0;

    ClientHello part;
    const HelloStatus prefix = proxy::tls::parse_client_hello(all.first(size / 2), kMax, part);
    if (prefix != HelloStatus::need_more && prefix != HelloStatus::complete) __builtin_trap();
    if (prefix == HelloStatus::complete && !same(part, whole)) __builtin_trap();

    // The same hello from a reader that had more bytes than it (the client's next record).
    std::vector<std::uint8_t> longer(all.begin(), all.end());
    longer.insert(longer.end(), {0x17, 0x03, 0x03, 0x00, 0x01, 0x00});
    ClientHello again;
    if (proxy::tls::parse_client_hello(longer, kMax, again) != HelloStatus::complete || !same(again, whole))
        __builtin_trap();
    return 0;
}
