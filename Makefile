# framescope — the README's two commands are `make run` and `make test`.
#   make deps   install every Debian package (scripts/install-deps.sh; idempotent)
#   make build  release build into build/release
#   make test   deps + dev build (-Werror) + ctest, plus the ring and parser tests under ASan/UBSan
#   make run    deps + build + bring the system up, show status for ~30 s, bring it down
#   make bench  deps + build + benchmarks (prints numbers; see docs/benchmarks.md)
SHELL := /bin/bash
JOBS ?= $(shell nproc)
STATE_DIR ?= $(CURDIR)/.framescope
RUN_SECONDS ?= 30
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

# The shared-memory ring and the parsers (config, RESP, Prometheus text, HTTP, COPY rows,
# api parameters, stream entries, pprof, ELF/DWARF, the perf ring) under AddressSanitizer + UBSan.
test-asan: deps
	@cmake --preset asan >/dev/null
	@cmake --build --preset asan -j $(JOBS) --target frame_ring_test service_common_test base_test \
	  pg_client_test api_test aggregation_test pprof_test symbolizer_test sampler_test
	@./build/asan/bin/frame_ring_test --gtest_brief=1
	@./build/asan/bin/service_common_test --gtest_brief=1
	@./build/asan/bin/base_test --gtest_brief=1
	@./build/asan/bin/pg_client_test --gtest_brief=1
	@./build/asan/bin/api_test --gtest_brief=1 --gtest_filter='ApiParamsTest.*:ApiClientTest.*'
	@./build/asan/bin/aggregation_test --gtest_brief=1 --gtest_filter='DetectionEntryTest.*'
	@./build/asan/bin/pprof_test --gtest_brief=1
	@./build/asan/bin/symbolizer_test --gtest_brief=1
	@./build/asan/bin/sampler_test --gtest_brief=1

run: build
	@./build/release/bin/framescope down --state-dir $(STATE_DIR) >/dev/null 2>&1 || true
	@./build/release/bin/framescope up --state-dir $(STATE_DIR)
	@trap './build/release/bin/framescope down --state-dir $(STATE_DIR)' EXIT; \
	for i in $$(seq 1 $$(( $(RUN_SECONDS) / 10 ))); do \
	  sleep 10; echo; echo "--- status after $$(( i * 10 )) s ---"; \
	  ./build/release/bin/framescope status --state-dir $(STATE_DIR) || true; \
	done; \
	echo; echo "--- loadgen delivered rates (last report) ---"; \
	grep -E 'camera=cam[0-9]+ FPS: ' $(STATE_DIR)/logs/loadgen.log | tail -n 10; \
	echo; echo "--- api clients (last report) ---"; \
	grep -E 'apiclient: rate' $(STATE_DIR)/logs/apiclient.log | tail -n 2 || true; \
	echo; echo "logs: $(STATE_DIR)/logs"

bench: build
	@BENCH_SECONDS=$(BENCH_SECONDS) bash bench/system_bench.sh

format:
	@git ls-files '*.cc' '*.h' | xargs clang-format -i

clean:
	rm -rf build
