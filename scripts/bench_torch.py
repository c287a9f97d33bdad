"""PyTorch reference for `steerlab bench`: GPT-2 small or Gemma-2-2B (random weights) forward pass on the CPU.
Usage: python3 bench_torch.py SEQ ITERS [gpt2|gemma2]; prints `median_ms X`."""
import statistics
import sys
import time

import torch
from transformers import Gemma2Config, Gemma2ForCausalLM, GPT2Config, GPT2LMHeadModel

seq, iters = int(sys.argv[1]), int(sys.argv[2])
arch = sys.argv[3] if len(sys.argv) > 3 else "gpt2"
torch.manual_seed(0)
if arch == "gemma2":
    # Gemma2Config's defaults are gemma-2-2b's shape.
    model = Gemma2ForCausalLM(Gemma2Config(attn_implementation="eager")).eval()
else:
    model = GPT2LMHeadModel(GPT2Config()).eval()
tokens = (torch.arange(seq) * 7919 + 13) % 50257
with torch.inference_mode():
    model(tokens[None])  # warm-up
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        model(tokens[None]).logits.sum().item()
        times.append((time.perf_counter() - t) * 1e3)
print(f"median_ms {statistics.median(times):.3f}")
