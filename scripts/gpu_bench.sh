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
  # With the tuning kept on disk (the `tuning-cache` feature): the rows are separate processes.
  cargo build --release --locked --bin steerlab --features tuning-cache
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
  # name, seconds allowed (560 in all with the profile, inside one 10-minute device call), arguments. Each row
  # loads its own model, so one that fails or runs out of time does not stop the rest. The kernels' tuning is
  # kept on disk (~/.cache/cubecl: the binary is built with `tuning-cache`), so a row after the first finds the
  # shapes it shares with earlier rows tuned, as a user's second run does; each flow row's "again" figure is the
  # tuned one either way.
  local rows=(
    "forward 70 bench --device wgpu"
    "forward-f16 60 --precision f16 bench --device wgpu"
    "steerability 90 bench --flow steerability --device wgpu"
    "decompose 110 bench --flow decompose --device wgpu"
    "features 70 bench --flow features --device wgpu"
    "gemma2-2b 110 bench --model gemma2-2b --device wgpu --iters 3"
  )
  local row name limit args
  for row in "${rows[@]}"; do
    read -r name limit args <<<"$row"
    echo "== $name: steerlab $args" | tee -a "$out/all.log"
    # shellcheck disable=SC2086 # the arguments are words
    timeout "$limit" "$bin" $args >"$out/$name.log" 2>&1 || echo "(exit $?)" >>"$out/$name.log"
    grep -v XDG_RUNTIME_DIR "$out/$name.log" | tail -n 12 | tee -a "$out/all.log"
  done
  # Where a pass spends its time, for tuning after the lease: cubecl's per-kernel timings of one forward pass and
  # the decode steps (profiling waits on each kernel, so this row's own figures are not the bench's), summed by
  # kernel name into profile.log (eight files at most come back).
  echo "== profile: steerlab bench --device wgpu --iters 1, cubecl's kernel timings" | tee -a "$out/all.log"
  CUBECL_DEBUG_OPTION=profile CUBECL_DEBUG_LOG=/tmp/steerlab-cubecl.log \
    timeout 50 "$bin" bench --device wgpu --iters 1 --python /bin/false >"$out/profile.log" 2>&1 || true
  python3 - /tmp/steerlab-cubecl.log >>"$out/profile.log" 2>&1 <<'PY' || true
import collections, re, sys
unit = {"ns": 1e-6, "µs": 1e-3, "ms": 1.0, "s": 1e3}
total, count = collections.Counter(), collections.Counter()
for line in open(sys.argv[1], errors="replace"):
    m = re.match(r"^\| ([0-9.]+)(ns|µs|ms|s) *\| (.+)$", line)
    if m:
        # A kernel's name, then its type parameters split by '|'; the families say which matmul or attention
        # variant ran. The trailing hash (one per shape) is dropped: one row per kernel and variant.
        parts = [re.sub(r"_[0-9a-f]{8}$", "", p.strip()) for p in m.group(3).split("|")]
        name = " ".join([parts[0]] + [p for p in parts[1:] if p.endswith("Family")])
        total[name] += float(m.group(1)) * unit[m.group(2)]
        count[name] += 1
print(f"kernel time by name, {sum(count.values())} launches, {sum(total.values()):.1f} ms")
for name, ms in total.most_common(30):
    print(f"{ms:10.2f} ms {count[name]:7d} launches  {name}")
PY
  tail -n 32 "$out/profile.log" | tee -a "$out/all.log"
}

case "${1:-}" in
  pack) pack ;;
  run) run "${2:-}" ;;
  *) echo "usage: scripts/gpu_bench.sh pack | run OUTDIR" >&2; exit 2 ;;
esac
