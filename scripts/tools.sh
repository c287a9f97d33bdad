# Sourced by scripts/lab.sh, scripts/build_site.sh and .ci/run: installs what building the browser lab needs, once,
# at pinned versions, so that no build downloads anything: the wasm32 target, trunk and the wasm-bindgen CLI (its
# version must equal the wasm-bindgen crate's) and, for release builds, binaryen 116's wasm-opt (Debian's binaryen 108
# corrupts this wasm). Each cargo install compiles for a few minutes, once.
export PATH="$HOME/.cargo/bin:$PATH"
steerlab_scripts="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
steerlab_binaryen="$steerlab_scripts/binaryen"
steerlab_wasm_opt_cache="$steerlab_scripts/wasm-opt-cache"

# The tools are built with a light release profile: trunk's own (fat LTO, one codegen unit) and binaryen's C++ at -O3
# took 19 of a cold CI run's 90 minutes on 2 cores. What they do is unchanged (the same wasm comes out); only they
# run a little slower, seconds in a site build.
tool_install() {
  CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    CARGO_PROFILE_RELEASE_DEBUG=false cargo install "$@"
}

lab_tools() {
  local release=${1:-}
  rustup target add wasm32-unknown-unknown >/dev/null
  if ! trunk --version 2>/dev/null | grep -q 'trunk 0.21.14'; then
    echo "steerlab: installing trunk 0.21.14 (once; a few minutes)"
    tool_install trunk --version 0.21.14 --locked --no-default-features
  fi
  if ! wasm-bindgen --version 2>/dev/null | grep -q 'wasm-bindgen 0.2.130'; then
    echo "steerlab: installing wasm-bindgen-cli 0.2.130 (once; a few minutes)"
    tool_install wasm-bindgen-cli --version 0.2.130
  fi
  if [ "$release" = --release ]; then
    wasm_opt_116
    # trunk calls wasm-opt through scripts/wasm-opt-cache, which reuses its output for an unchanged wasm.
    local path_without="${PATH//"$steerlab_wasm_opt_cache:"/}"
    STEERLAB_WASM_OPT="$(PATH="$path_without" command -v wasm-opt)"
    export STEERLAB_WASM_OPT PATH="$steerlab_wasm_opt_cache:$path_without"
  fi
}

# binaryen 116's wasm-opt: one already on PATH (e.g. `cargo install wasm-opt --version 0.116.1`), else npm's build of
# it (scripts/binaryen, locked; a second to install, where the crate compiles C++ for 8 minutes on 2 cores, and it
# writes byte-for-byte the same wasm, in about 2.5× the time: 3 minutes for the worker), else the crate.
wasm_opt_116() {
  wasm-opt --version 2>/dev/null | grep -q 'version 116' && return
  if command -v npm >/dev/null && command -v node >/dev/null; then
    [ -x "$steerlab_binaryen/node_modules/.bin/wasm-opt" ] ||
      (echo "steerlab: installing wasm-opt (binaryen 116, npm; once)" &&
        cd "$steerlab_binaryen" && npm ci --no-audit --no-fund >/dev/null)
    export PATH="$steerlab_binaryen/node_modules/.bin:$PATH"
    wasm-opt --version 2>/dev/null | grep -q 'version 116' && return
  fi
  echo "steerlab: installing wasm-opt 0.116.1 (binaryen 116; once, a few minutes)"
  tool_install wasm-opt --version 0.116.1 --locked
}
