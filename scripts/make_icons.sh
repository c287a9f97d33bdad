#!/usr/bin/env bash
# Renders static/icon.svg to the PNG icons the web manifest lists (browsers want 192 and 512 px PNGs to offer
# installing the lab). Needs chromium; the PNGs are committed.
set -euo pipefail
cd "$(dirname "$0")/../static"
for size in 192 512; do
  page=$(mktemp --suffix=.html)
  printf '<html><body style="margin:0"><img src="file://%s/icon.svg" width="%s" height="%s"></body></html>' \
    "$PWD" "$size" "$size" >"$page"
  chromium --headless --no-sandbox --hide-scrollbars --default-background-color=00000000 \
    --window-size="$size,$size" --screenshot="icon-$size.png" "file://$page" 2>/dev/null
  rm "$page"
done
