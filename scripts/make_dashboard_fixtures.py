#!/usr/bin/env python3
"""Reference feature dashboards for steerlab's tests, computed with transformers and sae-lens on the committed
fixtures (run make_fixtures.py and make_sae_fixtures.py first):
    python3 scripts/make_dashboard_fixtures.py

For the `standard` SAE (blocks.1.hook_resid_pre) on gpt2-tiny and features 0..N-1, over static/datasets/corpus.txt
(one passage a line, passages of fewer than two tokens skipped, position 0 of each left out of every statistic),
tests/fixtures/saes/standard/dashboards.json holds, per feature:
  passages    the top-P passages by their largest activation: [index among the kept passages, max, position]
  histogram   counts of the activations > 0 in BINS equal bins from 0 to the largest; its top edge; tokens fired
              on; tokens counted
  promoted    the top-K token ids of softmax(lm_head(ln_f(W_dec[f]))); suppressed: the bottom K
  neighbours  the K other features with the largest cosine between decoder rows: [id, cosine]
and, for TEXT, each token's top-K firing features [id, act] and the top-K features by their largest activation
after the first token: [id, act, position].
"""
import json
import os

import torch
from sae_lens import SAE
from transformers import AutoModelForCausalLM, AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
N, P, K, BINS, LAYER = 8, 10, 10, 30, 1
TEXT = "The wedding was lovely, and the bride smiled at everyone."


@torch.no_grad()
def main():
    path = os.path.join(ROOT, "tests", "fixtures", "models", "gpt2-tiny")
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float32).eval()
    sae = SAE.load_from_disk(os.path.join(ROOT, "tests", "fixtures", "saes", "standard"))
    enc = lambda text: torch.tensor(tok(text, add_special_tokens=False)["input_ids"])
    resid = lambda t: model(t[None], output_hidden_states=True).hidden_states[LAYER][0]

    lines = [l.strip() for l in open(os.path.join(ROOT, "static", "datasets", "corpus.txt")) if l.strip()]
    seqs = [t for t in (enc(l)[: model.config.n_positions] for l in lines) if t.numel() >= 2]
    fired = [[] for _ in range(N)]
    best = [[] for _ in range(N)]
    tokens = 0
    for i, t in enumerate(seqs):
        acts = sae.encode(resid(t))[:, :N]  # [s, N]
        tokens += t.numel() - 1
        for f in range(N):
            a = acts[1:, f]
            fired[f].extend(a[a > 0].tolist())
            mx, at = a.max(dim=0)
            if mx > 0:
                best[f].append([i, mx.item(), at.item() + 1])

    lens = torch.softmax(model.lm_head(model.transformer.ln_f(sae.W_dec[:N])), dim=-1)  # [N, vocab]
    unit = sae.W_dec / sae.W_dec.norm(dim=-1, keepdim=True)
    cos = unit[:N] @ unit.T  # [N, d_sae]
    features = []
    for f in range(N):
        top = sorted(best[f], key=lambda e: (-e[1], e[0]))[:P]
        values = torch.tensor(fired[f], dtype=torch.float32)
        mx = values.max() if values.numel() else torch.tensor(0.0)
        counts = [0] * BINS
        for v in values:
            counts[min(int((v / mx * BINS).item()), BINS - 1)] += 1
        c = cos[f].clone()
        c[f] = -float("inf")
        near = c.topk(K)
        features.append({
            "feature": f,
            "passages": top,
            "histogram": {"counts": counts, "top": mx.item(), "fired": len(fired[f]), "tokens": tokens},
            "promoted": lens[f].topk(K).indices.tolist(),
            "suppressed": (-lens[f]).topk(K).indices.tolist(),
            "neighbours": [[i, v] for i, v in zip(near.indices.tolist(), near.values.tolist())],
        })

    t = enc(TEXT)
    acts = sae.encode(resid(t))  # [s, d_sae]
    per_token = []
    for row in acts:
        v, i = row.topk(K)
        per_token.append([[f, a] for f, a in zip(i.tolist(), v.tolist()) if a > 0])
    mx, at = acts[1:].max(dim=0)
    v, i = mx.topk(K)
    top = [[f, a, at[f].item() + 1] for f, a in zip(i.tolist(), v.tolist()) if a > 0]

    out = {"features": features, "text": TEXT, "per_token": per_token, "top": top,
           "n": N, "passages": P, "k": K, "bins": BINS}
    dest = os.path.join(ROOT, "tests", "fixtures", "saes", "standard", "dashboards.json")
    with open(dest, "w") as fh:
        json.dump(out, fh, indent=1)
    print("wrote", dest, [len(f["passages"]) for f in features], [f["histogram"]["fired"] for f in features])


if __name__ == "__main__":
    main()
