#!/usr/bin/env bash
# Starts the browser lab locally at http://127.0.0.1:8080 on its embedded default (a tiny random GPT-2 and SAE,
# built-in datasets), so it works with no download. Installs what the build needs the first time
# (scripts/tools.sh: the wasm32 target, trunk and the wasm-bindgen CLI, a few minutes of compiling, once).
# `--release` builds optimised wasm, as the hosted site does (and installs wasm-opt for it, from npm); other arguments go to
# `trunk serve` (e.g. --port 8081). Page and worker share one target dir and one build of the engine. Says what it
# is doing, and prints the lab's address only once the lab answers there.
set -euo pipefail
cd "$(dirname "$0")/.."
port=8080
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  [[ "${args[i]}" == --port ]] && port="${args[i + 1]:-$port}"
  [[ "${args[i]}" == --port=* ]] && port="${args[i]#--port=}"
done

release=
for arg in "$@"; do [[ "$arg" == --release ]] && release=--release; done
source scripts/tools.sh
lab_tools $release

if [ -n "$release" ]; then
  echo "steerlab: building the lab (release: optimised wasm, the size a hosted site serves). The first release"
  echo "          build took 16.5 minutes on 2 cores from scratch (measured); later starts reuse it. Compiler progress follows."
else
  echo "steerlab: building the lab. The first build compiles the engine for WebAssembly: about 26 minutes on 2 cores;"
  echo "          later starts reuse it and take seconds. Compiler progress follows."
fi
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
