// libFuzzer entry for the front/signer channel: the signer decodes whatever a compromised
// front sends. Every byte string must decode or be refused, never crash, hang, leak or
// throw; and the encoding is canonical, so a decoded message re-encodes to the same bytes.

#include "privsep/messages.hpp"

#include <cstddef>
#include <cstdint>
#include <variant>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto decoded = ca::privsep::decode({data, size});
    if (const auto* message = std::get_if<ca::privsep::Message>(&decoded)) {
        const auto again = ca::privsep::encode(*message);
        if (again.size() != size || !std::equal(again.begin(), again.end(), data)) __builtin_trap();
    }
    return 0;
}
