"""PyTorch + transformers reference for `steerlab bench --flow decompose`: the work `steerlab decompose` does
(src/analysis), batched as a competent user writes it with a SAELens-layout SAE.

Loads the model and SAE directories steerlab wrote, then: the CAA vector at the SAE's hook from the training
two-thirds of the A/B items; corpus activations and their norms; encode(0) vs encode(s * SV); the default
components (corpus and pair activations projected on the top features' encoder directions); signed decoder
projections and the anti-aligned partners of the negative ones; and the steerability table: SV, its
reconstruction, bias-corrected top-k subsets, non-negative and signed gradient pursuit, each over
multipliers x held-out items in batched passes. Prints the time (load included) and the table's steerabilities.

Usage: python3 bench_decompose_torch.py [--gpu] MODEL_DIR SAE_DIR ITEMS_JSON CORPUS_TXT LAYER
"""
import json
import sys
import time

import torch
from safetensors.torch import load_file
from transformers import GPT2LMHeadModel, PreTrainedTokenizerFast

# The same kind of device as steerlab's: with --gpu (steerlab on wgpu or CUDA), CUDA when torch has it.
gpu = "--gpu" in sys.argv
argv = [a for a in sys.argv if a != "--gpu"]
device = "cuda" if gpu and torch.cuda.is_available() else "cpu"
model_dir, sae_dir, items_path, corpus_path, layer = argv[1:6]
layer = int(layer)
multipliers = [-2.0, -1.0, 0.0, 1.0, 2.0]
ks = [1, 4, 16, 64]
top = 10
batch_size = 64


def letter(answer):
    return "".join(c for c in answer if c.isalnum())


def padded(seqs):
    width = max(len(s) for s in seqs)
    ids = torch.tensor([s + [0] * (width - len(s)) for s in seqs], device=device)
    mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs], device=device)
    return ids, mask


def hidden_at_layer(model, seqs):
    """hidden_states[layer] (= blocks.layer.hook_resid_pre) of each sequence, [n, seq, d] per batch."""
    for start in range(0, len(seqs), batch_size):
        chunk = seqs[start : start + batch_size]
        ids, mask = padded(chunk)
        out = model.transformer(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        yield chunk, out.hidden_states[layer]


start_time = time.perf_counter()
with torch.inference_mode():
    tok = PreTrainedTokenizerFast(tokenizer_file=f"{model_dir}/tokenizer.json")
    model = GPT2LMHeadModel.from_pretrained(model_dir, attn_implementation="sdpa").eval().to(device)
    w = load_file(f"{sae_dir}/sae_weights.safetensors", device=device)
    W_enc, b_enc, W_dec, b_dec = w["W_enc"], w["b_enc"], w["W_dec"], w["b_dec"]

    def encode(x):
        return torch.relu((x - b_dec) @ W_enc + b_enc)

    items = json.load(open(items_path))
    train = [it for i, it in enumerate(items) if i % 3 != 2]
    test = [it for i, it in enumerate(items) if i % 3 == 2]
    prompt = lambda it: f"{it['question'].rstrip()}\n\nAnswer: ("
    pairs = [(prompt(it) + letter(it["answer_matching_behavior"]), prompt(it) + letter(it["answer_not_matching_behavior"])) for it in train]

    # The vector and the pair activations at the SAE's hook (last token).
    texts = [tok(t)["input_ids"] for pair in pairs for t in pair]
    last_acts = torch.cat([h[torch.arange(len(c), device=device), torch.tensor([len(s) - 1 for s in c], device=device)] for c, h in hidden_at_layer(model, texts)])
    pos, neg = last_acts[0::2], last_acts[1::2]
    sv = (pos.double() - neg.double()).mean(0).float()

    # 1. Corpus activations (position 0 left out) and their norms.
    passages = [l.strip() for l in open(corpus_path) if l.strip()]
    seqs = [ids[:1024] for ids in (tok(p)["input_ids"] for p in passages) if len(ids) >= 2]
    corpus = torch.cat([h[r, 1 : len(s)] for c, h in hidden_at_layer(model, seqs) for r, s in enumerate(c)])
    norms = corpus.norm(dim=1)
    median = norms.sort().values[len(norms) // 2]
    typical = max(float(median / sv.norm().clamp_min(1e-12)), 1.0)

    # 2. Encoder bias: encode(0) vs encode(s * SV).
    enc = encode(torch.stack([torch.zeros_like(sv), sv, typical * sv]))
    features = sorted(set(enc[1].topk(top).indices.tolist()) | set(enc[0].topk(top).indices.tolist()))[:top]
    cos_zero = torch.nn.functional.cosine_similarity(enc[1:], enc[0:1].expand(2, -1))

    # 3. Default components.
    dirs = W_enc[:, features]
    strips = [corpus @ dirs, pos @ dirs, neg @ dirs, sv @ dirs]

    # 4. Signed projections and anti-aligned partners.
    unit = W_dec / W_dec.norm(dim=1, keepdim=True).clamp_min(1e-12)
    decoder = unit @ sv
    acts = encode(sv[None])[0]
    negative = [f for f in (-decoder).topk(top).indices.tolist() if decoder[f] < 0]
    partners = (unit @ unit[negative].T).topk(2, dim=0, largest=False).indices

    # 5. The steerability table.
    mean = corpus.mean(0)
    candidates = [sv, (encode(sv[None]) @ W_dec + b_dec)[0]]
    both = encode(torch.stack([sv + mean, mean]))
    corrected = both[0] - both[1]
    rec = both @ W_dec + b_dec
    row_norms = W_dec.norm(dim=1)
    for k in ks:
        keep = (corrected.abs() * row_norms).topk(k).indices
        keep = keep[corrected[keep] != 0]
        coefs = torch.zeros_like(corrected)
        coefs[keep] = corrected[keep]
        candidates.append(coefs @ W_dec)
    candidates.append(rec[0] - rec[1])
    for signed in (False, True):
        coefs = torch.zeros(W_dec.shape[0], device=device)
        support = torch.zeros(W_dec.shape[0], dtype=torch.bool, device=device)
        residual = sv.clone()
        for step in range(1, ks[-1] + 1):
            inner = unit @ residual
            score = inner.abs() if signed else inner
            best = score.argmax()
            if score[best] > 1e-12:
                support[best] = True
            grad = inner * support
            c = grad @ unit
            coefs = coefs + grad * ((c @ residual) / (c @ c).clamp_min(1e-20))
            if not signed:
                coefs = coefs.clamp_min(0)
            fit = coefs @ unit
            residual = sv - fit
            if step in ks:
                candidates.append(fit.clone())

    item_ids = [tok(prompt(it))["input_ids"] for it in test]
    letter_ids = [
        (tok(prompt(it) + letter(it["answer_matching_behavior"]))["input_ids"][-1],
         tok(prompt(it) + letter(it["answer_not_matching_behavior"]))["input_ids"][-1])
        for it in test
    ]
    vectors = torch.stack(candidates)  # [V, d]
    rows = [(v, m, i) for v in range(len(candidates)) for m in multipliers for i in range(len(test))]
    coefs = None

    def add_vectors(module, args, kwargs):
        hidden = args[0] if args else kwargs["hidden_states"]
        hidden = hidden + coefs[:, None, :]
        if args:
            return (hidden,) + args[1:], kwargs
        kwargs["hidden_states"] = hidden
        return args, kwargs

    handle = model.transformer.h[layer].register_forward_pre_hook(add_vectors, with_kwargs=True)
    diffs = {}
    for start in range(0, len(rows), batch_size):
        part = rows[start : start + batch_size]
        coefs = torch.stack([m * vectors[v] for v, m, _ in part])
        ids, mask = padded([item_ids[i] for _, _, i in part])
        hidden = model.transformer(input_ids=ids, attention_mask=mask).last_hidden_state
        h = hidden[torch.arange(len(part), device=device), torch.tensor([len(item_ids[i]) - 1 for _, _, i in part], device=device)]
        pick = torch.tensor([letter_ids[i] for _, _, i in part], device=device)
        logits = (model.lm_head.weight[pick] * h[:, None, :]).sum(-1)
        for row, dl in zip(part, (logits[:, 0] - logits[:, 1]).tolist()):
            diffs[row] = dl
    handle.remove()
    xs = torch.tensor(multipliers, device=device)
    slopes = []
    for v in range(len(candidates)):
        means = torch.tensor([sum(diffs[(v, m, i)] for i in range(len(test))) / len(test) for m in multipliers], device=device)
        slopes.append(float(((xs - xs.mean()) * (means - means.mean())).sum() / ((xs - xs.mean()) ** 2).sum()))
elapsed = (time.perf_counter() - start_time) * 1e3

print(f"device {device}")
print(f"total_ms {elapsed:.1f}")
for s in slopes:
    print(f"result {s:.6f}")
