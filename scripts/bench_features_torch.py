"""PyTorch + transformers reference for `steerlab bench --flow features`: the work `steerlab features --promoting
" love"` does (src/analysis/features.rs and side_effects.rs), batched as a competent user writes it with a
SAELens-layout SAE.

Loads the model and SAE directories steerlab wrote, then: the 10 features whose logit lens most promotes " love";
their output scores (each amplified at the last position of "From my experience,", one batched pass) and input
scores (top-activating corpus passages); and their side effects: decoder geometry, activation statistics and
co-activation over the corpus, logit footprint, effect stability over the built-in prompts (feature x prompt rows
in batched passes) and collateral spread. Prints the time (load included) and each feature's output score.

Usage: python3 bench_features_torch.py [--gpu] MODEL_DIR SAE_DIR CORPUS_TXT PROMPTS_TXT LAYER
"""
import sys
import time

import torch
from safetensors.torch import load_file
from transformers import GPT2LMHeadModel, PreTrainedTokenizerFast

# The same kind of device as steerlab's: with --gpu (steerlab on wgpu or CUDA), CUDA when torch has it.
gpu = "--gpu" in sys.argv
argv = [a for a in sys.argv if a != "--gpu"]
device = "cuda" if gpu and torch.cuda.is_available() else "cpu"
model_dir, sae_dir, corpus_path, prompts_path, layer = argv[1:6]
layer = int(layer)
count, lens_k, amplification, batch_size = 10, 20, 10.0, 64


def padded(seqs):
    width = max(len(s) for s in seqs)
    ids = torch.tensor([s + [0] * (width - len(s)) for s in seqs], device=device)
    mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs], device=device)
    return ids, mask


start_time = time.perf_counter()
with torch.inference_mode():
    tok = PreTrainedTokenizerFast(tokenizer_file=f"{model_dir}/tokenizer.json")
    model = GPT2LMHeadModel.from_pretrained(model_dir, attn_implementation="sdpa").eval().to(device)
    w = load_file(f"{sae_dir}/sae_weights.safetensors", device=device)
    W_enc, b_enc, W_dec, b_dec = w["W_enc"], w["b_enc"], w["W_dec"], w["b_dec"]
    W_U, ln_f = model.lm_head.weight, model.transformer.ln_f
    encode = lambda x: torch.relu((x - b_dec) @ W_enc + b_enc)

    def resid(seqs):
        """hidden_states[layer] of right-padded batches: list of (chunk, [n, seq, d])."""
        out = []
        for start in range(0, len(seqs), batch_size):
            chunk = seqs[start : start + batch_size]
            ids, mask = padded(chunk)
            h = model.transformer(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[layer]
            out.append((chunk, h))
        return out

    coefs = None

    def add(module, args, kwargs):
        hidden = args[0] if args else kwargs["hidden_states"]
        hidden = hidden + coefs
        if args:
            return (hidden,) + args[1:], kwargs
        kwargs["hidden_states"] = hidden
        return args, kwargs

    def steered_probs(seqs, deltas):
        """Next-token probabilities at each row's last position with deltas [n, seq or 1, d] at the hook."""
        global coefs
        handle = model.transformer.h[layer].register_forward_pre_hook(add, with_kwargs=True)
        probs = []
        for start in range(0, len(seqs), batch_size):
            chunk = seqs[start : start + batch_size]
            coefs = deltas[start : start + batch_size]
            ids, mask = padded(chunk)
            h = model.transformer(input_ids=ids, attention_mask=mask).last_hidden_state
            probs.append(torch.softmax(h[torch.arange(len(chunk), device=device), torch.tensor([len(s) - 1 for s in chunk], device=device)] @ W_U.T, -1))
        handle.remove()
        return torch.cat(probs)

    # The features promoting " love", their logit lens and its top tokens.
    token = tok(" love")["input_ids"][0]
    features = (ln_f(W_dec) @ W_U[token]).topk(count).indices
    lens_probs = torch.softmax(ln_f(W_dec[features]) @ W_U.T, -1)  # [f, vocab]
    lens = lens_probs.topk(lens_k, dim=1).indices  # [f, k]

    # Output scores: each feature amplified at the prompt's last position.
    prompt = tok("From my experience,")["input_ids"]
    (_, h), = resid([prompt])
    max_act = encode(h[0, -1:]).max()
    s = len(prompt)
    deltas = torch.zeros(count, s, W_dec.shape[1], device=device)
    deltas[:, s - 1] = max_act * amplification * W_dec[features]
    probs = steered_probs([prompt] * count, deltas)
    best = probs.gather(1, lens).max(1).values
    rank = (probs > best[:, None]).sum(1)
    output_scores = (1 - rank / probs.shape[1]) * best

    # Input scores: the most-activating token of each feature's top passages.
    passages = [l.strip() for l in open(corpus_path) if l.strip()]
    seqs = [ids[:1024] for ids in (tok(p)["input_ids"] for p in passages) if len(ids) >= 2]
    examples = [[] for _ in range(count)]
    corpus = []
    for chunk, h in resid(seqs):
        for r, seq in enumerate(chunk):
            x = h[r, 1 : len(seq)]
            corpus.append(x)
            acts = encode(x)[:, features]  # [positions, f]
            mx, at = acts.max(0)
            for j in range(count):
                if mx[j] > 0:
                    examples[j].append((float(mx[j]), seq[1 + int(at[j])]))
    input_scores = []
    for j in range(count):
        top = sorted(examples[j], key=lambda e: -e[0])[:100]
        input_scores.append(sum(t in lens[j].tolist() for _, t in top) / len(top) if top else None)

    # Side effects: predictors from the SAE and the corpus.
    unit = W_dec / W_dec.norm(dim=1, keepdim=True).clamp_min(1e-12)
    cos = (unit[features] @ unit.T).abs()
    cos[torch.arange(count, device=device), features] = 0
    geometry = [(float(c.max()), int((c >= 0.5).sum())) for c in cos]
    corpus = torch.cat(corpus)
    norms = corpus.norm(dim=1).sort().values
    strength = 0.5 * float(norms[len(norms) // 2])
    acts = encode(corpus)
    fired = (acts > 0).float()
    co = fired[:, features].T @ fired  # [f, d_sae]
    counts = fired.sum(0)
    union = counts[features][:, None] + counts[None, :] - co
    jaccard = torch.where(union > 0, co / union.clamp_min(1e-12), torch.zeros_like(co))
    jaccard[torch.arange(count, device=device), features] = 0
    stats = [(float(counts[f] / len(corpus)), float(acts[:, f].sum() / counts[f]) if counts[f] > 0 else 0.0, float(jaccard[j].max()))
             for j, f in enumerate(features.tolist())]
    footprint = torch.exp(-(lens_probs * lens_probs.clamp_min(1e-45).log()).sum(1))

    # Measured: effect on the lens tokens over the prompts, and collateral spread at the hook.
    prompts = [tok(l.strip())["input_ids"] for l in open(prompts_path) if l.strip()]
    clean = steered_probs(prompts, torch.zeros(len(prompts), 1, W_dec.shape[1], device=device))
    rows = [(j, p) for j in range(count) for p in range(len(prompts))]
    steered = steered_probs([prompts[p] for _, p in rows], torch.stack([strength * W_dec[features[j]][None] for j, _ in rows]))
    mass = lambda pr, j: pr[lens[j]].sum().clamp_min(1e-30).log()
    prompt_acts = torch.cat([h[r, 1 : len(seq)] for chunk, h in resid(prompts) for r, seq in enumerate(chunk)])
    before = encode(prompt_acts)
    measured = []
    for j, f in enumerate(features.tolist()):
        effects = torch.stack([mass(steered[j * len(prompts) + p], j) - mass(clean[p], j) for p in range(len(prompts))])
        change = (encode(prompt_acts + strength * W_dec[f]) - before).abs()
        total, own = change.sum(1), change[:, f]
        keep = total > 0
        spread = float(((total[keep] - own[keep]) / total[keep]).clamp_min(0).mean()) if keep.any() else 0.0
        measured.append((float(effects.mean()), float(effects.std(unbiased=False)), spread))
elapsed = (time.perf_counter() - start_time) * 1e3

print(f"device {device}")
print(f"total_ms {elapsed:.1f}")
for score in sorted(output_scores.tolist(), reverse=True):
    print(f"result {score:.6f}")
