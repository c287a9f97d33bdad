"""PyTorch + transformers reference for `steerlab bench --flow steerability`: the same flow, batched as a
competent user writes it.

Loads the model directory steerlab wrote (random GPT-2 small weights, real GPT-2 tokenizer), then:
1. CAA at blocks.L.hook_resid_pre (= hidden_states[L]) for each layer, from every A/B item (prompt + matching
   letter vs prompt + other letter, read at the letter): all texts right-padded in batches, every layer read
   from one pass.
2. Steerability of each layer's vector: every item x multiplier in batched passes, the vector added to block
   L's input by a forward pre-hook; logits of the two answer letters at each row's last position only.
Prints the time (load included) and each layer's slope.

Usage: python3 bench_steerability_torch.py [--gpu] MODEL_DIR ITEMS_JSON LAYERS MULTIPLIERS [BATCH]
  e.g. ... /tmp/gpt2 items.json 2,4,6,8 -2,-1,0,1,2
"""
import json
import sys
import time

import torch
from transformers import GPT2LMHeadModel, PreTrainedTokenizerFast

# The same kind of device as steerlab's: with --gpu (steerlab on wgpu or CUDA), CUDA when torch has it.
gpu = "--gpu" in sys.argv
argv = [a for a in sys.argv if a != "--gpu"]
device = "cuda" if gpu and torch.cuda.is_available() else "cpu"
model_dir, items_path = argv[1], argv[2]
layers = [int(x) for x in argv[3].split(",")]
multipliers = [float(x) for x in argv[4].split(",")]
batch_size = int(argv[5]) if len(argv) > 5 else 64
items = json.load(open(items_path))


def letter(answer):
    return "".join(c for c in answer if c.isalnum())


def run_batches(model, seqs, hook=None):
    """Right-padded batches of token lists; yields (hidden states, last positions, batch index range)."""
    for start in range(0, len(seqs), batch_size):
        chunk = seqs[start : start + batch_size]
        width = max(len(s) for s in chunk)
        ids = torch.tensor([s + [0] * (width - len(s)) for s in chunk], device=device)
        mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in chunk], device=device)
        yield ids, mask, torch.tensor([len(s) - 1 for s in chunk], device=device), start


start_time = time.perf_counter()
with torch.inference_mode():
    tok = PreTrainedTokenizerFast(tokenizer_file=f"{model_dir}/tokenizer.json")
    model = GPT2LMHeadModel.from_pretrained(model_dir, attn_implementation="sdpa").eval().to(device)
    prompts = [f"{it['question'].rstrip()}\n\nAnswer: (" for it in items]
    letters = [(letter(it["answer_matching_behavior"]), letter(it["answer_not_matching_behavior"])) for it in items]

    # 1. CAA: positive and negative texts of every item, each layer's hidden state at the last token.
    texts = [tok(p + l)["input_ids"] for p, pair in zip(prompts, letters) for l in pair]
    sums = {L: torch.zeros(model.config.n_embd, dtype=torch.float64, device=device) for L in layers}
    for ids, mask, last, start in run_batches(model, texts):
        out = model.transformer(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        rows = torch.arange(len(ids), device=device)
        for L in layers:
            h = out.hidden_states[L][rows, last].double()  # [rows, d]
            sign = torch.tensor([1.0 if (start + i) % 2 == 0 else -1.0 for i in range(len(ids))], dtype=torch.float64, device=device)
            sums[L] += (sign[:, None] * h).sum(0)
    vectors = {L: (sums[L] / len(items)).float() for L in layers}

    # 2. Steerability: item x multiplier rows, per-row coefficients at block L's input.
    item_ids = [tok(p)["input_ids"] for p in prompts]
    letter_ids = [(tok(p + m)["input_ids"][-1], tok(p + n)["input_ids"][-1]) for p, (m, n) in zip(prompts, letters)]
    slopes = {}
    for L in layers:
        rows = [(i, m) for m in multipliers for i in range(len(items))]
        diffs = {}
        coefs = None

        def add_vector(module, args, kwargs):
            hidden = args[0] if args else kwargs["hidden_states"]
            hidden = hidden + coefs[:, None, None] * vectors[L]
            if args:
                return (hidden,) + args[1:], kwargs
            kwargs["hidden_states"] = hidden
            return args, kwargs

        handle = model.transformer.h[L].register_forward_pre_hook(add_vector, with_kwargs=True)
        seqs = [item_ids[i] for i, _ in rows]
        for ids, mask, last, start in run_batches(model, seqs):
            part = rows[start : start + len(ids)]
            coefs = torch.tensor([m for _, m in part], device=device)
            hidden = model.transformer(input_ids=ids, attention_mask=mask).last_hidden_state
            h = hidden[torch.arange(len(ids), device=device), last]  # [rows, d]: only the read positions are unembedded
            pick = torch.tensor([letter_ids[i] for i, _ in part], device=device)  # [rows, 2]
            logits = (model.lm_head.weight[pick] * h[:, None, :]).sum(-1)  # [rows, 2]
            for (i, m), dl in zip(part, (logits[:, 0] - logits[:, 1]).tolist()):
                diffs[(i, m)] = dl
        handle.remove()
        means = torch.tensor([sum(diffs[(i, m)] for i in range(len(items))) / len(items) for m in multipliers], device=device)
        xs = torch.tensor(multipliers, device=device)
        slopes[L] = float(((xs - xs.mean()) * (means - means.mean())).sum() / ((xs - xs.mean()) ** 2).sum())
elapsed = (time.perf_counter() - start_time) * 1e3

print(f"device {device}")
print(f"total_ms {elapsed:.1f}")
for L in layers:
    print(f"result {slopes[L]:.6f}")
