# Preflight checks of `framescope profile`: perf events, NVML, the load generator's FPS.
add_library(fs_preflight STATIC ${CMAKE_CURRENT_SOURCE_DIR}/preflight.cc)
target_include_directories(fs_preflight PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(fs_preflight PUBLIC fs_sampler fs_base PRIVATE ${CMAKE_DL_LIBS})

add_executable(preflight_test ${CMAKE_CURRENT_SOURCE_DIR}/preflight_test.cc)
target_link_libraries(preflight_test PRIVATE fs_preflight GTest::gtest_main)
gtest_discover_tests(preflight_test)
