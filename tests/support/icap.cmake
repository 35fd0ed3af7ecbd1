# ICAP engines for tests and benchmarks: c-icap + ClamAV (clamav_icap) and a misbehaving
# ICAP server of the tests' own (fake_icap).
include_guard(GLOBAL)
include(${CMAKE_CURRENT_LIST_DIR}/origin.cmake)
find_package(OpenSSL REQUIRED)
add_library(icap_support STATIC ${CMAKE_CURRENT_LIST_DIR}/clamav_icap.cpp ${CMAKE_CURRENT_LIST_DIR}/fake_icap.cpp)
target_include_directories(icap_support PUBLIC ${CMAKE_CURRENT_LIST_DIR}/..)
target_link_libraries(icap_support PUBLIC origin_support process_support OpenSSL::Crypto Threads::Threads)
