#include "ossl/digest.hpp"

#include <openssl/sha.h>

namespace ossl {

// The low-level SHA256_Init/Update/Final API avoids OpenSSL 3.0's per-call algorithm fetch
// (the one-shot SHA256() is EVP_Q_digest, which fetches every time); it stays available
// (deprecation notwithstanding) and is the hot path of issuance and audit hashing.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
Sha256 sha256(std::span<const std::uint8_t> data) { return sha256({data}); }

Sha256 sha256(std::initializer_list<std::span<const std::uint8_t>> pieces) {
    SHA256_CTX ctx;
    SHA256_Init(&ctx);
    for (auto p : pieces) SHA256_Update(&ctx, p.data(), p.size());
    Sha256 out;
    SHA256_Final(out.data(), &ctx);
    return out;
}
#pragma GCC diagnostic pop

}  // namespace ossl
