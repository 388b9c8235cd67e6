# DWARF unwinder (libdwfl over the sampler's register + stack copies) and its integration test.
if(NOT TARGET PkgConfig::DW)
  pkg_check_modules(DW REQUIRED IMPORTED_TARGET libdw)
endif()

add_library(fs_unwinder STATIC ${CMAKE_CURRENT_SOURCE_DIR}/unwinder.cc)
target_include_directories(fs_unwinder PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(fs_unwinder PUBLIC fs_process_dwfl fs_sampler fs_base PRIVATE PkgConfig::DW)

# The workload: no frame pointers, so only CFI finds Burn's callers (later flags win over the
# global -fno-omit-frame-pointer and the Debug -O0).
add_executable(unwinder_testprog ${CMAKE_CURRENT_SOURCE_DIR}/unwinder_testprog.cc)
target_compile_options(unwinder_testprog PRIVATE -O2 -g -fomit-frame-pointer)

add_executable(unwinder_test ${CMAKE_CURRENT_SOURCE_DIR}/unwinder_test.cc)
target_link_libraries(unwinder_test PRIVATE fs_unwinder fs_sampler fs_symbolizer fs_base
                                            GTest::gtest_main)
add_dependencies(unwinder_test unwinder_testprog)
target_compile_definitions(unwinder_test PRIVATE
  FS_UNWINDER_TESTPROG="$<TARGET_FILE:unwinder_testprog>")
gtest_discover_tests(unwinder_test PROPERTIES LABELS integration TIMEOUT 120)
