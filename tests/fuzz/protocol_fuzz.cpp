// libFuzzer entry: every byte string must decode to a value or an Error, never crash,
// hang, leak or throw. Both directions of /v1/leaf face untrusted peers.

#include "protocol/errors.hpp"
#include "protocol/leaf.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <variant>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view body(reinterpret_cast<const char*>(data), size);

    auto request = protocol::decode_leaf_request(body);
    // A decoded request must survive its own round trip unchanged.
    if (auto* value = std::get_if<protocol::LeafRequest>(&request)) {
        auto again = protocol::decode_leaf_request(protocol::encode_leaf_request(*value));
        if (!std::holds_alternative<protocol::LeafRequest>(again) ||
            std::get<protocol::LeafRequest>(again) != *value)
            __builtin_trap();
    }
    auto response = protocol::decode_leaf_response(body);
    if (auto* value = std::get_if<protocol::LeafResponse>(&response)) {
        auto again = protocol::decode_leaf_response(protocol::encode_leaf_response(*value));
        if (!std::holds_alternative<protocol::LeafResponse>(again) ||
            std::get<protocol::LeafResponse>(again) != *value)
            __builtin_trap();
    }
    (void)protocol::decode_error(body);
    return 0;
}
