#!/usr/bin/env python3
"""Reference values for steerlab's side-effect measures (src/analysis/side_effects.rs — our own formulation
after Duan 2026, whose formulas are not public), computed with transformers and sae-lens independently of steerlab
on the committed fixtures (run make_fixtures.py and make_sae_fixtures.py first):
    python3 scripts/make_side_effect_fixtures.py

For FEATURES of the `standard` SAE (blocks.1.hook_resid_pre) on gpt2-tiny, steering with STRENGTH x the decoder
row at every position of PROMPTS, tests/fixtures/saes/standard/side_effects.safetensors holds, per feature:
  max_cos, neighbours       largest |cos| of its unit decoder row with another's; how many others have |cos| >= 0.5
  firing_rate, mean_act     over static/datasets/corpus.txt's tokens (position 0 left out): share of tokens where
                            sae-lens's activation is > 0, and the mean activation there
  coact                     largest Jaccard index of its firing tokens with another feature's
  footprint                 exp(entropy) of softmax(lm_head(ln_f(W_dec[f])))
  effect_mean, effect_std   over prompts, of log sum p(its top-LENS_K lens tokens) at the last position, steered
                            minus unsteered (std: population)
  collateral                over the prompts' tokens (position 0 left out) with a nonzero change, the share of
                            sum_g |encode(x + s W_dec[f]) - encode(x)|_g off feature f
  downstream                over prompts, the share of sum_t |p_steered - p_unsteered|_t outside its lens tokens
and `checks` [6, 3]: Spearman correlations (average ranks) of the predictors (max_cos, neighbours, firing_rate,
mean_act, coact, footprint) with effect_std / |effect_mean|, collateral and downstream (NaN: undefined).
"""
import json
import math
import os

import torch
from safetensors.torch import save_file

from make_population_fixtures import load_tiny, spearman
from make_science_fixtures import adder

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
LAYER, STRENGTH, LENS_K = 1, 3.0, 20
FEATURES = [0, 1, 2, 3, 4, 5, 6, 7]
PROMPTS = [l.strip() for l in open(os.path.join(ROOT, "static", "datasets", "prompts.txt")) if l.strip()][:6]


def main():
    tok, enc, model, sae, sae_dir = load_tiny()
    hidden = lambda ids: model(torch.tensor([ids]), output_hidden_states=True).hidden_states[LAYER][0]
    w = sae.W_dec.double()
    unit = w / w.norm(dim=-1, keepdim=True)
    out = {k: [] for k in ("max_cos", "neighbours", "firing_rate", "mean_act", "coact", "footprint",
                           "effect_mean", "effect_std", "collateral", "downstream")}
    with torch.no_grad():
        passages = [l.strip() for l in open(os.path.join(ROOT, "static", "datasets", "corpus.txt")) if l.strip()]
        corpus = torch.cat([hidden(t)[1:] for t in (enc(p)[: model.config.n_positions] for p in passages) if len(t) >= 2])
        fired = (sae.encode(corpus) > 0).double()  # [n, d_sae]
        acts = sae.encode(corpus).double()
        counts = fired.sum(0)
        lens = torch.softmax(model.lm_head(model.transformer.ln_f(sae.W_dec)).double(), dim=-1)  # [d_sae, vocab]
        prompt_x = torch.cat([hidden(enc(p))[1:] for p in PROMPTS if len(enc(p)) >= 2])

        def next_probs(ids, add=None):
            hook = adder({"v": add})
            handle = model.transformer.h[LAYER].register_forward_pre_hook(hook, with_kwargs=True) if add is not None else None
            p = torch.softmax(model(torch.tensor([ids])).logits[0, -1].double(), -1)
            if handle:
                handle.remove()
            return p

        clean = [next_probs(enc(p)) for p in PROMPTS]
        for f in FEATURES:
            cos = (unit[f] @ unit.T).abs()
            cos[f] = 0.0
            out["max_cos"].append(float(cos.max()))
            out["neighbours"].append(int((cos >= 0.5).sum()))
            out["firing_rate"].append(float(counts[f] / len(corpus)))
            out["mean_act"].append(float(acts[:, f].sum() / counts[f]) if counts[f] > 0 else 0.0)
            both = fired[:, f] @ fired
            union = counts[f] + counts - both
            jac = torch.where(union > 0, both / union.clamp_min(1e-30), torch.zeros_like(both))
            jac[f] = 0.0
            out["coact"].append(float(jac.max()))
            p = lens[f]
            out["footprint"].append(math.exp(float(-(p[p > 0] * p[p > 0].log()).sum())))

            ids = p.topk(LENS_K).indices
            effects, spreads = [], []
            for prompt, c in zip(PROMPTS, clean):
                s = next_probs(enc(prompt), STRENGTH * sae.W_dec[f])
                effects.append(float(s[ids].sum().log() - c[ids].sum().log()))
                change = (s - c).abs()
                spreads.append(float((change.sum() - change[ids].sum()) / change.sum()))
            m = sum(effects) / len(effects)
            out["effect_mean"].append(m)
            out["effect_std"].append(math.sqrt(sum((e - m) ** 2 for e in effects) / len(effects)))
            out["downstream"].append(sum(spreads) / len(spreads))

            before = sae.encode(prompt_x).double()
            after = sae.encode(prompt_x + STRENGTH * sae.W_dec[f]).double()
            change = (after - before).abs()
            total, own = change.sum(1), change[:, f]
            shares = [max(0.0, float((t - o) / t)) for t, o in zip(total, own) if t > 0]
            out["collateral"].append(sum(shares) / len(shares) if shares else 0.0)

    cv = [s / max(abs(m), 1e-12) for s, m in zip(out["effect_std"], out["effect_mean"])]
    checks = []
    for name in ("max_cos", "neighbours", "firing_rate", "mean_act", "coact", "footprint"):
        xs = [float(x) for x in out[name]]
        checks.append([safe_spearman(xs, ys) for ys in (cv, out["collateral"], out["downstream"])])
    tensors = {k: torch.tensor(v, dtype=torch.float32) for k, v in out.items()}
    tensors["checks"] = torch.tensor(checks, dtype=torch.float32)
    meta = {"features": json.dumps(FEATURES), "prompts": json.dumps(PROMPTS), "strength": json.dumps(STRENGTH),
            "lens_k": json.dumps(LENS_K)}
    save_file(tensors, os.path.join(sae_dir, "side_effects.safetensors"), metadata=meta)
    for k, v in out.items():
        print(k, [round(float(x), 4) for x in v])
    print("checks", checks)


def safe_spearman(xs, ys):
    """Spearman's correlation; NaN for fewer than three points or a constant side."""
    if len(xs) < 3 or len(set(xs)) < 2 or len(set(ys)) < 2:
        return float("nan")
    return spearman(xs, ys)


if __name__ == "__main__":
    main()
