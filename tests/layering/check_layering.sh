#!/usr/bin/env bash
# Fails when an #include points against the layering in docs/ARCHITECTURE.md: nothing under
# src/ includes services/, and each profiler stage includes only the stages before it.
#   base → clients, config → system → cli
#   base → profile → collect → symbolize → record → report → session → cli
#   base → memory, model, gpu (analysers) → report → session → cli
#   base → clients → io (analysers) → report → session → cli
#   base → profile → regression (analyser) → report → session → cli
set -uo pipefail
root="${1:-$(dirname "$0")/../..}"
cd "$root" || exit 2
# folder: the src/ folders it must not include (besides services/, forbidden for all of src/)
declare -A forbidden=(
  [base]="clients config profile collect symbolize record report system session cli"
  [clients]="config profile collect symbolize record report system session cli"
  [config]="clients profile collect symbolize record report system session cli"
  [profile]="clients config collect symbolize record report system session cli"
  [collect]="clients config symbolize record report system session cli"
  [symbolize]="clients config record report system session cli"
  [record]="clients config report system session cli"
  [report]="clients config system session cli"
  [system]="profile collect symbolize record report session cli"
  [memory]="clients config record report system session cli"
  [model]="config profile collect symbolize record report system session cli"
  [gpu]="clients config profile collect symbolize record report system session cli"
  [io]="config profile collect symbolize record report system session cli"
  [regression]="clients config collect symbolize record report system session cli"
  [session]="cli"
)
bad=0
while IFS= read -r line; do
  file="${line%%:*}"
  inc="${line#*#include \"}"
  inc="${inc%%\"*}"
  folder="${file#src/}"
  folder="${folder%%/*}"
  if [[ "$inc" == services/* ]]; then
    echo "layering: $file includes $inc (nothing under src/ may include services/)"
    bad=1
    continue
  fi
  if [[ "$folder" != cli && -z "${forbidden[$folder]+x}" ]]; then
    echo "layering: src/$folder is not in this script's table: add its rule"
    bad=1
    continue
  fi
  [[ "$inc" == src/* ]] || continue
  [[ "$file" == *_test.cc || "$file" == *_testprog.cc ]] && continue  # tests may use fixtures
  target="${inc#src/}"
  target="${target%%/*}"
  for f in ${forbidden[$folder]:-}; do
    if [[ "$target" == "$f" ]]; then
      echo "layering: $file includes $inc (src/$folder must not depend on src/$f)"
      bad=1
    fi
  done
done < <(grep -rHn --include='*.h' --include='*.cc' '^#include "' src | sed -E 's/^([^:]+):[0-9]+:/\1:/')
[[ $bad -eq 0 ]] && echo "layering: ok"
exit $bad
