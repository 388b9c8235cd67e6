#!/usr/bin/env bash
# Measures framescope-capture's CPU per stream against the real RTSP test camera.
#   services/capture/measure_capture_cpu.sh [BIN_DIR] [STREAMS] [SIZE] [FPS] [SECONDS] [RUNS]
#   e.g. services/capture/measure_capture_cpu.sh build/release/bin 1 640x360 30 20 3
# Prints one line per run and the median: CPU% of one core per stream (utime+stime of the
# capture process only, from /proc/<pid>/stat) and the decoded fps per stream, so a camera
# server that could not keep up is visible rather than flattering the number.
# The camera server (openh264 encoding) runs on the same host: on a small machine it competes
# with capture for CPU, which is why the delivered fps is printed beside the cost.
set -euo pipefail

BIN=${1:-build/release/bin}
STREAMS=${2:-1}
SIZE=${3:-640x360}
FPS=${4:-30}
SECONDS_PER_RUN=${5:-20}
RUNS=${6:-3}
TICK=$(getconf CLK_TCK)

work=$(mktemp -d)
server_pid=""
capture_pid=""
cleanup() {
  [[ -n "$capture_pid" ]] && kill "$capture_pid" 2>/dev/null && wait "$capture_pid" 2>/dev/null || true
  [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
frames_in() {
  curl -s "http://127.0.0.1:$1/metrics" |
    awk '/^framescope_frames_in_total\{/ {s += $2} END {printf "%d\n", s}'
}

results=()
for run in $(seq 1 "$RUNS"); do
  rm -f "$work/port" "$work/capture.json"
  "$BIN/capture_rtsp_test_server" --port 0 --size "$SIZE" --fps "$FPS" \
    --ready-file "$work/port" >"$work/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 100); do [[ -s "$work/port" ]] && break; sleep 0.1; done
  url="rtsp://127.0.0.1:$(cat "$work/port")/cam"
  cams=$url
  for _ in $(seq 2 "$STREAMS"); do cams="$cams,$url"; done
  "$BIN/framescope-capture" --cameras "$cams" --ring-dir "$work/rings" \
    --port-file "$work/capture.json" >"$work/capture.log" 2>&1 &
  capture_pid=$!
  port=""
  for _ in $(seq 100); do
    port=$(python3 -c "import json;print(json.load(open('$work/capture.json'))['metrics_port'])" \
      2>/dev/null || true)
    [[ -n "$port" ]] && [[ $(curl -s -o /dev/null -w '%{http_code}' \
      "http://127.0.0.1:$port/health") == 200 ]] && break
    sleep 0.2
  done
  sleep 3  # warm-up: connection setup and first key frames are not steady state
  t0=$(cpu_ticks "$capture_pid"); f0=$(frames_in "$port")
  sleep "$SECONDS_PER_RUN"
  t1=$(cpu_ticks "$capture_pid"); f1=$(frames_in "$port")
  line=$(awk -v t="$((t1 - t0))" -v hz="$TICK" -v s="$SECONDS_PER_RUN" -v n="$STREAMS" \
    -v f="$((f1 - f0))" 'BEGIN {printf "%.2f %.1f", 100 * t / hz / s / n, f / s / n}')
  echo "run $run: $line  (cpu% of one core per stream, decoded fps per stream)"
  results+=("$line")
  kill "$capture_pid"; wait "$capture_pid" || true; capture_pid=""
  kill "$server_pid"; wait "$server_pid" || true; server_pid=""
done
printf '%s\n' "${results[@]}" | sort -n | awk -v n="$RUNS" -v streams="$STREAMS" \
  -v size="$SIZE" -v fps="$FPS" '
  {cpu[NR] = $1; f[NR] = $2}
  END {printf "median over %d runs, %d stream(s) %s@%s: %.2f%% CPU per stream (min %.2f, max %.2f), %.1f fps per stream\n",
       n, streams, size, fps, cpu[int((n + 1) / 2)], cpu[1], cpu[n], f[int((n + 1) / 2)]}'
