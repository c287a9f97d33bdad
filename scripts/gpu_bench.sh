#!/usr/bin/env bash
# Every `steerlab bench` row on an NVIDIA GPU in one run: steerlab on wgpu (Vulkan), each row beside PyTorch +
# transformers on CUDA, for README's GPU table. Two steps, because the GPU machine may have no Rust, no internet
# and no Vulkan loader:
#
#   scripts/gpu_bench.sh pack        # on the build machine: the release binary (stripped, gzipped) and the GPT-2
#                                    # tokenizer the flow benches use into .gpu/, Debian's Vulkan and EGL loaders
#                                    # into .gl/ (both git-ignored; about 21 MB together)
#   scripts/gpu_bench.sh run OUTDIR  # on the GPU machine, beside .gpu/ and .gl/ (this script is all it needs of
#                                    # the checkout): each row's output in OUTDIR/NAME.log, all of them in all.log
set -euo pipefail
cd "$(dirname "$0")/.."

pack() {
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/steerlab-target}"
  cargo build --release --locked --bin steerlab
  mkdir -p .gpu .gl
  strip -o .gpu/steerlab "$CARGO_TARGET_DIR/release/steerlab"
  gzip -9f .gpu/steerlab
  cp tests/fixtures/models/gpt2-tiny/tokenizer.json .gpu/
  # The loaders for amd64, whatever this machine is; the NVIDIA driver itself is the GPU machine's.
  local lists=/tmp/steerlab-apt-amd64
  mkdir -p "$lists/partial"
  local o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 "-oDir::State::Lists=$lists")
  apt-get "${o[@]}" update -qq
  (cd .gl && apt-get "${o[@]}" download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
  du -ch .gpu/* .gl/* | tail -1
}

run() {
  local out="${1:?usage: scripts/gpu_bench.sh run OUTDIR}"
  mkdir -p "$out"
  if ! ldconfig -p | grep -q libvulkan.so.1; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
  fi
  local icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  [ -f "$icd" ] && export VK_DRIVER_FILES="$icd"
  local bin=/tmp/steerlab
  gunzip -c .gpu/steerlab.gz >"$bin"
  chmod +x "$bin"
  # The flow benches read the tokenizer where a checkout keeps it, from the folder they run in.
  local work=/tmp/steerlab-gpu-bench
  mkdir -p "$work/tests/fixtures/models/gpt2-tiny"
  cp .gpu/tokenizer.json "$work/tests/fixtures/models/gpt2-tiny/"
  out="$(realpath "$out")"
  cd "$work"
  nvidia-smi -L 2>&1 | tee "$out/all.log" || true
  python3 -c 'import torch, transformers; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), "transformers", transformers.__version__)' 2>&1 | tee -a "$out/all.log"
  # name, seconds allowed (570 in all, inside one 10-minute device call), arguments. Each row loads its own
  # model, so one that fails or runs out of time does not stop the rest.
  local rows=(
    "forward 80 bench --device wgpu"
    "forward-f16 80 --precision f16 bench --device wgpu"
    "steerability 90 bench --flow steerability --device wgpu"
    "decompose 120 bench --flow decompose --device wgpu"
    "features 80 bench --flow features --device wgpu"
    "gemma2-2b 120 bench --model gemma2-2b --device wgpu --iters 3"
  )
  local row name limit args
  for row in "${rows[@]}"; do
    read -r name limit args <<<"$row"
    echo "== $name: steerlab $args" | tee -a "$out/all.log"
    # shellcheck disable=SC2086 # the arguments are words
    timeout "$limit" "$bin" $args >"$out/$name.log" 2>&1 || echo "(exit $?)" >>"$out/$name.log"
    grep -v XDG_RUNTIME_DIR "$out/$name.log" | tail -n 12 | tee -a "$out/all.log"
  done
}

case "${1:-}" in
  pack) pack ;;
  run) run "${2:-}" ;;
  *) echo "usage: scripts/gpu_bench.sh pack | run OUTDIR" >&2; exit 2 ;;
esac
