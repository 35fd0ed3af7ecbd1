# Sources of the ca-service's issuance policy (ca-service/policy/), for the ca_core library:
#   include(${PROJECT_SOURCE_DIR}/tests/unit/policy_build.cmake)
#   target_sources(ca_core PRIVATE ${SPLITCA_POLICY_SOURCES})
#   target_include_directories(ca_core PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})   # "policy/names.hpp"
#   target_link_libraries(ca_core PUBLIC protocol ossl)
set(SPLITCA_POLICY_DIR ${PROJECT_SOURCE_DIR}/ca-service/policy)
set(SPLITCA_POLICY_SOURCES
    ${SPLITCA_POLICY_DIR}/names.cpp
    ${SPLITCA_POLICY_DIR}/public_suffixes.cpp
    ${SPLITCA_POLICY_DIR}/public_key.cpp
    ${SPLITCA_POLICY_DIR}/issuance_policy.cpp
    ${SPLITCA_POLICY_DIR}/rate_limiter.cpp)
set(SPLITCA_POLICY_INCLUDE_ROOT ${PROJECT_SOURCE_DIR}/ca-service)
