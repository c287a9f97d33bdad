#!/usr/bin/env bash
# Starts the browser lab locally at http://127.0.0.1:8080 on its embedded default (a tiny random GPT-2 and SAE,
# built-in datasets), so it works with no download. Installs what the build needs the first time: the wasm32
# target, trunk and the wasm-bindgen CLI (a few minutes of compiling, once). Says what it is doing, and prints the
# lab's address only once the lab answers there.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
port=8080
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  [[ "${args[i]}" == --port ]] && port="${args[i + 1]:-$port}"
  [[ "${args[i]}" == --port=* ]] && port="${args[i]#--port=}"
done

rustup target add wasm32-unknown-unknown >/dev/null
if ! trunk --version 2>/dev/null | grep -q 'trunk 0.21.14'; then
  echo "steerlab: installing trunk 0.21.14 (once; a few minutes)"
  cargo install trunk --version 0.21.14 --locked --no-default-features
fi
if ! wasm-bindgen --version 2>/dev/null | grep -q 'wasm-bindgen 0.2.130'; then
  echo "steerlab: installing wasm-bindgen-cli 0.2.130 (once; a few minutes)"
  cargo install wasm-bindgen-cli --version 0.2.130
fi

echo "steerlab: building the lab. The first build compiles the engine for WebAssembly: about 30 minutes on 2 cores,"
echo "          10 on 8. Later starts reuse it and take seconds. Compiler progress follows."
trunk serve --offline "$@" &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT INT TERM

# Whether the lab's page answers 200 on the port.
ready() {
  (
    exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
    printf 'GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
    head -n 1 <&3 | grep -q ' 200'
  ) 2>/dev/null
}

started=$SECONDS
last=$SECONDS
until ready; do
  if ! kill -0 "$server" 2>/dev/null; then
    wait "$server"
    exit $?
  fi
  sleep 3
  if ((SECONDS - last >= 120)); then
    last=$SECONDS
    echo "steerlab: still building ($(((SECONDS - started) / 60)) min so far; after an error above, trunk waits for a fix)…"
  fi
done
echo "steerlab: the lab is ready at http://127.0.0.1:$port (built in $(((SECONDS - started) / 60)) min $(((SECONDS - started) % 60)) s)"
wait "$server"
