# framescope — the README's two commands are `make run` and `make test`.
#   make deps   install every Debian package (scripts/install-deps.sh; idempotent)
#   make build  release build into build/release
#   make test   deps + dev build (-Werror) + ctest, plus the ring and parser tests under ASan/UBSan
#   make run    deps + build + bring the system up, profile every service for 60 s
#               (profiles/index.html, docs/performance-baseline.md), bring it down
#   make bench  deps + build + benchmarks (prints numbers; see docs/benchmarks.md)
SHELL := /bin/bash
JOBS ?= $(shell nproc)
STATE_DIR ?= $(CURDIR)/.framescope
PROFILE_SECONDS ?= 60
# Our services run under the heap library (exact counters + sampled allocation sites) so the
# baseline has their heap profiles; HEAP_PROFILE= (empty) runs them without it.
HEAP_PROFILE ?= all
BENCH_SECONDS ?= 60

.PHONY: all deps build test test-asan run bench clean format

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	@cmake --preset release >/dev/null
	@cmake --build --preset release -j $(JOBS)

test: deps
	@cmake --preset dev >/dev/null
	@cmake --build --preset dev -j $(JOBS)
	@$(MAKE) --no-print-directory test-asan
	@ctest --preset dev -j 1 --timeout 600

# The shared-memory ring, the output writer and the parsers (config, RESP, Prometheus text, HTTP
# framing and slow clients, COPY rows,
# api parameters, stream entries, pprof, ELF/DWARF, the perf ring, DWARF stack unwinding, kallsyms,
# loadgen logs, the CPU report, BuildProfile's junk cuts, the call tree, the governor, the batch
# analysis' metrics deltas and JSON, the roofline, the model report, Redis INFO/LATENCY
# HISTOGRAM/SLOWLOG parsing and the pipelining counter deltas, the network map's histogram
# deltas and edge graph, pg_stat_statements windows and plan JSON, the database report, run.json,
# compare's statistics and sides, the crontab edits, the history page) under AddressSanitizer + UBSan.
test-asan: deps
	@cmake --preset asan >/dev/null
	@cmake --build --preset asan -j $(JOBS) --target frame_ring_test clients_test config_test base_test \
	  pg_client_test api_test aggregation_test pprof_test symbolizer_test sampler_test unwinder_test \
	  kernel_symbols_test cpu_report_test preflight_test recorder_test call_tree_test governor_test \
	  http_test output_test heap_test batch_analysis_test roofline_test model_report_test \
	  redis_info_test net_edges_test edge_graph_test pg_stats_test db_report_test \
	  run_manifest_test stats_test compare_test schedule_test history_test
	@./build/asan/bin/frame_ring_test --gtest_brief=1
	@./build/asan/bin/clients_test --gtest_brief=1
	@./build/asan/bin/config_test --gtest_brief=1
	@./build/asan/bin/base_test --gtest_brief=1
	@./build/asan/bin/http_test --gtest_brief=1
	@./build/asan/bin/output_test --gtest_brief=1
	@./build/asan/bin/heap_test --gtest_brief=1
	@./build/asan/bin/batch_analysis_test --gtest_brief=1
	@./build/asan/bin/roofline_test --gtest_brief=1
	@./build/asan/bin/model_report_test --gtest_brief=1
	@./build/asan/bin/redis_info_test --gtest_brief=1
	@./build/asan/bin/net_edges_test --gtest_brief=1
	@./build/asan/bin/run_manifest_test --gtest_brief=1
	@./build/asan/bin/stats_test --gtest_brief=1
	@./build/asan/bin/compare_test --gtest_brief=1
	@./build/asan/bin/schedule_test --gtest_brief=1
	@./build/asan/bin/history_test --gtest_brief=1
	@./build/asan/bin/edge_graph_test --gtest_brief=1
	@./build/asan/bin/pg_stats_test --gtest_brief=1
	@./build/asan/bin/db_report_test --gtest_brief=1
	@./build/asan/bin/pg_client_test --gtest_brief=1
	@./build/asan/bin/api_test --gtest_brief=1 --gtest_filter='ApiParamsTest.*:ApiClientTest.*'
	@./build/asan/bin/aggregation_test --gtest_brief=1 --gtest_filter='DetectionEntryTest.*'
	@./build/asan/bin/pprof_test --gtest_brief=1
	@./build/asan/bin/symbolizer_test --gtest_brief=1
	@./build/asan/bin/sampler_test --gtest_brief=1
	@./build/asan/bin/unwinder_test --gtest_brief=1
	@./build/asan/bin/kernel_symbols_test --gtest_brief=1
	@./build/asan/bin/cpu_report_test --gtest_brief=1
	@./build/asan/bin/preflight_test --gtest_brief=1
	@./build/asan/bin/recorder_test --gtest_brief=1
	@./build/asan/bin/call_tree_test --gtest_brief=1
	@./build/asan/bin/governor_test --gtest_brief=1

run: build
	@./build/release/bin/framescope down --state-dir $(STATE_DIR) >/dev/null 2>&1 || true
	@./build/release/bin/framescope up --state-dir $(STATE_DIR) --heap-profile=$(HEAP_PROFILE)
	@trap './build/release/bin/framescope down --state-dir $(STATE_DIR)' EXIT; \
	echo; echo "--- profiling every service for $(PROFILE_SECONDS) s ---"; \
	./build/release/bin/framescope profile --state-dir $(STATE_DIR) \
	  --duration $(PROFILE_SECONDS) --out $(CURDIR)/profiles \
	  --baseline $(CURDIR)/docs/performance-baseline.md; rc=$$?; \
	echo; echo "--- the system after profiling ---"; \
	./build/release/bin/framescope status --state-dir $(STATE_DIR) || true; \
	echo; if [ $$rc -eq 0 ]; then echo "report: $(CURDIR)/profiles/index.html"; \
	  echo "baseline: $(CURDIR)/docs/performance-baseline.md; logs: $(STATE_DIR)/logs"; \
	else echo "framescope profile failed (exit $$rc, see above); logs: $(STATE_DIR)/logs"; fi; \
	exit $$rc

bench: build
	@BENCH_SECONDS=$(BENCH_SECONDS) bash bench/system_bench.sh

format:
	@git ls-files '*.cc' '*.h' | xargs clang-format -i

clean:
	rm -rf build
