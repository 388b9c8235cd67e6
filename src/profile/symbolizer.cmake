# libdwfl symbolizer (milestone 4): addresses of a live process -> functions, file:line, inlines.
pkg_check_modules(DW REQUIRED IMPORTED_TARGET libdw)

# A libdwfl session over a live process's modules, shared by the symbolizer and the unwinder.
add_library(fs_process_dwfl STATIC ${CMAKE_CURRENT_SOURCE_DIR}/process_dwfl.cc)
target_include_directories(fs_process_dwfl PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(fs_process_dwfl PUBLIC fs_base PRIVATE PkgConfig::DW)

add_library(fs_symbolizer STATIC ${CMAKE_CURRENT_SOURCE_DIR}/symbolizer.cc)
target_include_directories(fs_symbolizer PUBLIC ${PROJECT_SOURCE_DIR})
target_link_libraries(fs_symbolizer PUBLIC fs_process_dwfl fs_base fs_kernel_symbols PRIVATE PkgConfig::DW)

# The process the test symbolizes: known functions, an always_inline body, optimised with debug
# info, once with and once without frame pointers (later flags win over the global
# -fno-omit-frame-pointer and the Debug -O0).
foreach(variant fp nofp)
  add_executable(symbolizer_testprog_${variant} ${CMAKE_CURRENT_SOURCE_DIR}/symbolizer_testprog.cc)
  target_compile_options(symbolizer_testprog_${variant} PRIVATE -O2 -g)
endforeach()
target_compile_options(symbolizer_testprog_fp PRIVATE -fno-omit-frame-pointer)
target_compile_options(symbolizer_testprog_nofp PRIVATE -fomit-frame-pointer)

add_executable(symbolizer_test ${CMAKE_CURRENT_SOURCE_DIR}/symbolizer_test.cc)
target_link_libraries(symbolizer_test PRIVATE fs_symbolizer fs_base GTest::gtest_main)
add_dependencies(symbolizer_test symbolizer_testprog_fp symbolizer_testprog_nofp)
target_compile_definitions(symbolizer_test PRIVATE
  FS_SYMBOLIZER_TESTPROG_FP="$<TARGET_FILE:symbolizer_testprog_fp>"
  FS_SYMBOLIZER_TESTPROG_NOFP="$<TARGET_FILE:symbolizer_testprog_nofp>")
gtest_discover_tests(symbolizer_test)
