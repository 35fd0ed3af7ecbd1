# The test origin (tests/support/origin_*): certificates made in code and an Asio HTTPS
# server. Shared by the proxy integration tests and proxy-bench.
include_guard(GLOBAL)
include(${CMAKE_CURRENT_LIST_DIR}/process.cmake)
add_library(origin_support STATIC ${CMAKE_CURRENT_LIST_DIR}/origin_pki.cpp ${CMAKE_CURRENT_LIST_DIR}/origin_server.cpp
            ${CMAKE_CURRENT_LIST_DIR}/nginx_origin.cpp)
target_include_directories(origin_support PUBLIC ${CMAKE_CURRENT_LIST_DIR}/..)
target_compile_definitions(origin_support PUBLIC ASIO_STANDALONE ASIO_NO_DEPRECATED ASIO_DISABLE_STD_ALIGNED_ALLOC)
target_link_libraries(origin_support PUBLIC ossl process_support Threads::Threads)
