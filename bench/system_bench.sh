#!/usr/bin/env bash
# make bench: the standard-load system benchmark. Prints numbers; writes build/bench/*.json.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=build/release/bin
mkdir -p build/bench
"$BIN/system_benchmark" --cameras 10 --fps 30 --resolution 640x360 \
  --seconds "${BENCH_SECONDS:-60}" --json-out build/bench/system.json
echo
echo "raw JSON: build/bench/system.json"
echo
# Aggregation vs direct COPY, and the api under wrk (private PostgreSQL + Redis; ~2 min).
"$BIN/storage_benchmark" --detections "${BENCH_DETECTIONS:-200000}" \
  --json-out build/bench/storage.json
echo
echo "raw JSON: build/bench/storage.json"
echo
# framescope record vs perf record on the running system (overhead per phase, post-processing)
# and the symbolizer's throughput (~3.5 min with 20 s phases; prints where its JSON went).
"$BIN/profiler_benchmark" --phase-seconds "${BENCH_PROFILER_PHASE_SECONDS:-20}" \
  --json-out build/bench/profiler.json
echo
# A fixed amount of work timed bare and under framescope record (fp, dwarf) and perf record
# (-g, dwarf), 7 interleaved repetitions: median slowdown ratio with its range (~6 min).
"$BIN/overhead_benchmark" --reps "${BENCH_OVERHEAD_REPS:-7}" --json-out build/bench/overhead.json
echo
# libframescope_heap.so (up --heap-profile): an allocation-heavy workload bare, with the library
# and under heaptrack (7 interleaved repetitions), then detection's FPS with the library off vs
# on in the running system (5 interleaved pairs of 15 s windows); ~5-6 min in all.
"$BIN/heap_benchmark" --reps "${BENCH_HEAP_REPS:-7}" \
  --detection-reps "${BENCH_HEAP_DETECTION_REPS:-5}" \
  --detection-seconds "${BENCH_HEAP_DETECTION_SECONDS:-15}" --json-out build/bench/heap.json
echo
# framescope model's per-layer total vs modelbench's forward on the same model and weights
# (5 interleaved repetitions), and how long the model and batch commands take (~2 min).
"$BIN/model_benchmark" --reps "${BENCH_MODEL_REPS:-5}" --json-out build/bench/model.json
