#!/usr/bin/env python3
"""Reference feature scores (Arad, Mueller & Belinkov 2025) for steerlab's tests, computed with transformers and
sae-lens on the committed fixtures (run make_fixtures.py and make_sae_fixtures.py first):
    python3 scripts/make_feature_fixtures.py

For the `standard` SAE (blocks.1.hook_resid_pre) on gpt2-tiny, features 0..N-1,
tests/fixtures/saes/standard/scores.safetensors holds
  lens_ids      I64 [N, 20]  top-20 tokens of softmax(lm_head(ln_f(W_dec[f]))), most likely first
  output_score  F32 [N]      (1 - best rank / vocab) * best prob of a lens token after amplifying f by
                             10 x the largest SAE activation at the last position of "From my experience,"
  output_rank   I64 [N]
  input_score   F32 [N]      share of the top-100 activating corpus passages (static/datasets/corpus.txt, one per
                             line, position 0 left out) whose max-activating token is a lens token; NaN: none
  examples      I64 [N]
and the same (without lens_ids) for VARIANTS: `wide.` with the top 5000 lens tokens, so that random fixtures give
input scores above zero, and `weak.` with amplification 0.05, so that lens tokens do not all reach rank 0
as in the paper's code (technion-cs-nlp/saes-are-good-for-steering), re-implemented here.
The feature is amplified as sae-lens decodes it: the residual at the last position plus decode(acts with
acts[f] += 10 x max acts) - decode(acts), which for an SAE that normalises its input (NORMALISING: constant-norm
rescaling, layer norm) is the amplification times the normalisation's scale; those SAEs get the `wide.` variant
in their own scores.safetensors.
"""
import json
import os

import torch
from safetensors.torch import save_file
from sae_lens import SAE
from transformers import AutoModelForCausalLM, AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
N, PROMPT, LAYER = 8, "From my experience,", 1
VARIANTS = {"": (20, 10.0), "wide.": (5000, 10.0), "weak.": (20, 0.05)}  # prefix: (lens tokens, amplification)
NORMALISING = ["standard-constant-norm", "jumprelu-layer-norm"]


def main():
    out = {}
    for prefix, (k, amp) in VARIANTS.items():
        for name, t in scores(k, amp).items():
            if prefix == "" or name != "lens_ids":
                out[prefix + name] = t
    meta = {"prompt": PROMPT, "variants": json.dumps(VARIANTS)}
    save_file(out, os.path.join(ROOT, "tests", "fixtures", "saes", "standard", "scores.safetensors"), metadata=meta)
    for sae_name in NORMALISING:
        k, amp = VARIANTS["wide."]
        out = {"wide." + name: t for name, t in scores(k, amp, sae_name).items() if name != "lens_ids"}
        meta = {"prompt": PROMPT, "variants": json.dumps({"wide.": VARIANTS["wide."]})}
        save_file(out, os.path.join(ROOT, "tests", "fixtures", "saes", sae_name, "scores.safetensors"), metadata=meta)


def scores(K, AMP, sae_name="standard"):
    path = os.path.join(ROOT, "tests", "fixtures", "models", "gpt2-tiny")
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float32).eval()
    sae_dir = os.path.join(ROOT, "tests", "fixtures", "saes", sae_name)
    sae = SAE.load_from_disk(sae_dir)
    enc = lambda text: torch.tensor(tok(text, add_special_tokens=False)["input_ids"])
    feats = list(range(N))
    with torch.no_grad():
        lens = torch.softmax(model.lm_head(model.transformer.ln_f(sae.W_dec[feats])), dim=-1)
        lens_ids = lens.topk(K, dim=-1).indices  # [N, K]

        ids = enc(PROMPT)
        x = model(ids[None], output_hidden_states=True).hidden_states[LAYER][0]  # [s, d]
        scores, ranks = [], []
        for f in feats:
            # Each decode undoes the normalisation its encode set (sae-lens forgets it after one decode).
            acts = sae.encode(x[-1:])  # [1, d_sae]
            amped = acts.clone()
            amped[0, f] += acts.max() * AMP
            plain = sae.decode(acts)
            sae.encode(x[-1:])
            delta = (sae.decode(amped) - plain)[0]

            def amplify(module, args, kwargs):
                h = (args[0] if args else kwargs["hidden_states"]).clone()
                h[0, -1] += delta
                if args:
                    return (h,) + tuple(args[1:]), kwargs
                kwargs["hidden_states"] = h
                return args, kwargs

            handle = model.transformer.h[LAYER].register_forward_pre_hook(amplify, with_kwargs=True)
            probs = torch.softmax(model(ids[None]).logits[0, -1], dim=0)
            handle.remove()
            order = torch.argsort(probs, descending=True)
            rank = min((order == t).nonzero()[0].item() for t in lens_ids[f].tolist())
            best = probs[lens_ids[f]].max().item()
            scores.append((1 - rank / probs.numel()) * best)
            ranks.append(rank)

        passages = [l.strip() for l in open(os.path.join(ROOT, "static", "datasets", "corpus.txt")) if l.strip()]
        best_by_feature = [[] for _ in feats]
        for text in passages:
            t = enc(text)[: model.config.n_positions]
            if t.numel() < 2:
                continue
            h = model(t[None], output_hidden_states=True).hidden_states[LAYER][0][1:]
            acts = sae.encode(h)[:, feats]  # [s-1, N]
            mx, at = acts.max(dim=0)
            for i in range(N):
                if mx[i] > 0:
                    best_by_feature[i].append((mx[i].item(), t[1:][at[i]].item()))
        input_scores, examples = [], []
        for i in range(N):
            top = sorted(best_by_feature[i], key=lambda e: -e[0])[:100]
            hits = sum(1 for _, tid in top if tid in lens_ids[i].tolist())
            input_scores.append(hits / len(top) if top else float("nan"))
            examples.append(len(top))
    print(K, "output", scores, "ranks", ranks, "input", input_scores, "examples", examples)
    return {
        "lens_ids": lens_ids.contiguous(),
        "output_score": torch.tensor(scores, dtype=torch.float32),
        "output_rank": torch.tensor(ranks),
        "input_score": torch.tensor(input_scores, dtype=torch.float32),
        "examples": torch.tensor(examples),
    }


if __name__ == "__main__":
    main()
