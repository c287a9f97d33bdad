#!/usr/bin/env bash
# Starts the browser lab locally at http://127.0.0.1:8080 on its embedded default (a tiny random GPT-2 and SAE,
# built-in datasets), so it works with no download. Installs what the build needs the first time: the wasm32
# target, trunk and the wasm-bindgen CLI (a few minutes of compiling, once).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
rustup target add wasm32-unknown-unknown >/dev/null
trunk --version 2>/dev/null | grep -q 'trunk 0.21.14' ||
  cargo install trunk --version 0.21.14 --locked --no-default-features
wasm-bindgen --version 2>/dev/null | grep -q 'wasm-bindgen 0.2.130' ||
  cargo install wasm-bindgen-cli --version 0.2.130
echo "steerlab: building the lab (the first build takes a while), then serving it at http://127.0.0.1:8080"
exec trunk serve --offline "$@"
