#!/usr/bin/env bash
# Installs every Debian package framescope needs to build, test and run.
# Idempotent: packages already present are skipped; uses sudo when not root.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build pkg-config git ca-certificates
  clang-format clang-tidy libgtest-dev libgmock-dev
  # camera simulator (RTSP server) and H.264 encode
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstrtspserver-1.0-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-tools
  # capture: RTSP client + H.264 decode + scaling
  libavformat-dev libavcodec-dev libavutil-dev libswscale-dev ffmpeg
  # detection: OpenCV DNN; darknet ships the yolov3-tiny .cfg and sample photographs
  libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev libopencv-dnn-dev
  darknet
  # storage: Redis Streams + cache, PostgreSQL 15 (pg_stat_statements ships in the server
  # package; hypopg for hypothetical indexes), libpq for the C++ clients
  redis-server redis-tools
  postgresql-15 postgresql-client-15 postgresql-15-hypopg libpq-dev
  # monitoring and load: Prometheus scrapes every service; wrk drives the api benchmark
  prometheus wrk
  # the profiler: elfutils (libdw/libdwfl unwinding and symbols), zlib (gzip pprof), Go's
  # pprof to check that our profiles open in the reference tool
  libdw-dev libelf-dev zlib1g-dev golang-go
  # perf (linux-perf): the reference profiler the profiler benchmark compares against;
  # heaptrack: the reference heap profiler the heap benchmark compares against
  linux-perf heaptrack
  # headless browser that checks the flame graphs render and their scripts work
  chromium
  # process inspection used by tests and benchmarks
  procps psmisc curl
  # `framescope schedule` installs a crontab entry where systemd is not running; its test
  # edits root's crontab and starts `cron -f`
  cron
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${#missing[@]} package(s): ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists only when they are missing or older than a day.
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -1)" ]; then
  $SUDO apt-get update -q
fi
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "install-deps: done"
