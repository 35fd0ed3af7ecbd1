# proxy-node inspection: HTTP/1.1 framing (http/message_parser), the pattern matcher, the
# integrated rule set, Content-Encoding decoding and ICAP on the wire (inspect/), WebSocket framing (websocket/). Included from tests/unit/CMakeLists.txt.
add_executable(inspect_tests
    http_message_parser_tests.cpp
    inspect_pattern_set_tests.cpp
    inspect_rule_set_tests.cpp
    inspect_content_decoding_tests.cpp
    inspect_engine_chain_tests.cpp
    icap_protocol_tests.cpp
    websocket_frames_tests.cpp)
target_link_libraries(inspect_tests PRIVATE proxy_core Catch2::Catch2WithMain ZLIB::ZLIB PkgConfig::BROTLIENC PkgConfig::ZSTD)
catch_discover_tests(inspect_tests TEST_PREFIX "inspect: ")
