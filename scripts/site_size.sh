#!/usr/bin/env bash
# Prints the size of a built site (default dist/): the page's and the engine worker's wasm and JavaScript, raw and
# gzipped (-9, as a static host compresses them), against the budget of 5 MB gzipped for the two wasm files
# together. `--check` fails when the budget is exceeded (the deploy workflow runs it on the release build).
#   scripts/site_size.sh [DIST] [--check]
set -euo pipefail
dist=dist
check=0
for arg in "$@"; do
  case "$arg" in
    --check) check=1 ;;
    *) dist="$arg" ;;
  esac
done
[ -f "$dist/index.html" ] || { echo "no site at $dist (build one: trunk build --release)" >&2; exit 1; }
budget=$((5 * 1000 * 1000))

gz() { gzip -9 -c "$1" | wc -c; }
mb() { awk -v b="$1" 'BEGIN { printf "%.2f MB", b / 1e6 }'; }

page_wasm=$(ls "$dist"/steerlab-www-*_bg.wasm 2>/dev/null | head -n 1)
worker_wasm="$dist/worker_bg.wasm"
[ -n "$page_wasm" ] && [ -f "$worker_wasm" ] || { echo "no page or worker wasm in $dist" >&2; exit 1; }

printf '%-28s %12s %12s\n' file raw gzipped
wasm_gz=0
for f in "$page_wasm" "$worker_wasm" "$dist"/steerlab-www-*.js "$dist"/worker.js "$dist"/worker_loader.js; do
  [ -f "$f" ] || continue
  raw=$(wc -c < "$f")
  z=$(gz "$f")
  case "$f" in *.wasm) wasm_gz=$((wasm_gz + z)) ;; esac
  printf '%-28s %12s %12s\n' "$(basename "$f" | sed -E 's/-[0-9a-f]{16}/-HASH/')" "$(mb "$raw")" "$(mb "$z")"
done
total=0
while IFS= read -r f; do total=$((total + $(gz "$f"))); done < <(find "$dist" -type f ! -path '*/hub/*')
printf '%-28s %12s %12s\n' "page + worker wasm" "" "$(mb "$wasm_gz")"
printf '%-28s %12s %12s\n' "whole shell (no model)" "" "$(mb "$total")"
echo "budget: page + worker wasm ≤ $(mb "$budget") gzipped: $([ "$wasm_gz" -le "$budget" ] && echo within || echo OVER)"
if [ "$check" = 1 ] && [ "$wasm_gz" -gt "$budget" ]; then exit 1; fi
