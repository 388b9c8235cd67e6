# Kernel symbol names from /proc/kallsyms (used by the symbolizer for kernel frames).
add_library(fs_kernel_symbols STATIC ${CMAKE_CURRENT_SOURCE_DIR}/kernel_symbols.cc)
target_include_directories(fs_kernel_symbols PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(fs_kernel_symbols PUBLIC fs_base)

add_executable(kernel_symbols_test ${CMAKE_CURRENT_SOURCE_DIR}/kernel_symbols_test.cc)
target_link_libraries(kernel_symbols_test PRIVATE fs_kernel_symbols fs_base GTest::gtest_main)
gtest_discover_tests(kernel_symbols_test)
