"""PyTorch reference for `steerlab bench`: GPT-2 small or Gemma-2-2B (random weights), a forward pass and greedy
decoding with the KV cache, on the CPU or (with `gpu`) on CUDA when torch has it.
Usage: python3 bench_torch.py SEQ ITERS [gpt2|gemma2] [cpu|gpu] [f32|f16] [ROWS]; prints `device D`, `median_ms X`,
`decode_ms Y`. With f16 the model runs in half precision (`model.half()`), as `steerlab bench --precision f16`.
ROWS continuations of the prompt decode together as one batch (`steerlab bench --rows`); a step is one token a row."""
import statistics
import sys
import time

import torch
from transformers import Gemma2Config, Gemma2ForCausalLM, GPT2Config, GPT2LMHeadModel

seq, iters = int(sys.argv[1]), int(sys.argv[2])
arch = sys.argv[3] if len(sys.argv) > 3 else "gpt2"
# The same device as steerlab's: CUDA when steerlab runs on an NVIDIA GPU (wgpu or cuda) and torch has it.
want_gpu = len(sys.argv) > 4 and sys.argv[4] == "gpu"
device = "cuda" if want_gpu and torch.cuda.is_available() else "cpu"
torch.manual_seed(0)
if arch == "gemma2":
    # Gemma2Config's defaults are gemma-2-2b's shape.
    model = Gemma2ForCausalLM(Gemma2Config(attn_implementation="eager")).eval()
else:
    model = GPT2LMHeadModel(GPT2Config()).eval()
half = len(sys.argv) > 5 and sys.argv[5] == "f16"
rows = int(sys.argv[6]) if len(sys.argv) > 6 else 1
model = model.to(device)
if half:
    model = model.half()
tokens = ((torch.arange(seq) * 7919 + 13) % 50257).to(device)
decode_steps = 16
with torch.inference_mode():
    model(tokens[None])  # warm-up
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        model(tokens[None]).logits.sum().item()
        times.append((time.perf_counter() - t) * 1e3)
    # Decode: one token a row a step after the prompt, with the KV cache, greedy (each row's next id read back).
    steps = []
    for _ in range(iters):
        out = model(tokens[None].repeat(rows, 1), use_cache=True)
        past, nxt = out.past_key_values, out.logits[:, -1].argmax(-1).tolist()
        for _ in range(decode_steps):
            t = time.perf_counter()
            out = model(torch.tensor(nxt, device=device)[:, None], past_key_values=past, use_cache=True)
            past, nxt = out.past_key_values, out.logits[:, -1].argmax(-1).tolist()
            steps.append((time.perf_counter() - t) * 1e3)
print(f"device {device} {'f16' if half else 'f32'}")
print(f"median_ms {statistics.median(times):.3f}")
print(f"decode_ms {statistics.median(steps):.3f}")
