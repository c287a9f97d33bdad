#!/usr/bin/env bash
# Builds the release site into dist/ (or --dist DIR): the `web` cargo profile (size-optimised, link-time
# optimised) and wasm-opt, for serving from any static host at --public-url (default /; a GitHub Pages project
# site is /REPOSITORY/), then prints its size against the budget (scripts/site_size.sh; --check-size fails the
# build when over it). Installs the pinned build tools the first time (scripts/tools.sh).
#   scripts/build_site.sh [--public-url /steerlab/] [--dist DIR] [--check-size]
set -euo pipefail
cd "$(dirname "$0")/.."
public_url=/
dist=dist
check=()
while (($#)); do
  case "$1" in
    --public-url) public_url="$2"; shift 2 ;;
    --public-url=*) public_url="${1#*=}"; shift ;;
    --dist) dist="$2"; shift 2 ;;
    --dist=*) dist="${1#*=}"; shift ;;
    --check-size) check=(--check); shift ;;
    *) echo "unknown argument $1 (expected --public-url URL, --dist DIR, --check-size)" >&2; exit 2 ;;
  esac
done
case "$public_url" in /*/ | /) ;; *) echo "--public-url must start and end with / (got $public_url)" >&2; exit 2 ;; esac

source scripts/tools.sh
lab_tools --release
started=$SECONDS
trunk build --release --offline --public-url "$public_url" --dist "$dist"
echo "steerlab: release site for $public_url in $dist (built in $(((SECONDS - started) / 60)) min $(((SECONDS - started) % 60)) s)"
scripts/site_size.sh "$dist" "${check[@]}"
