#!/usr/bin/env python3
"""Reference values for steerlab's steerability table (src/analysis/table.rs: where a steering vector's behaviour
goes when an SAE decomposes it, Mayne et al. 2024), computed with transformers and sae-lens on the committed
fixtures (run make_fixtures.py, make_sae_fixtures.py and make_decomposition_fixtures.py first):
    python3 scripts/make_table_fixtures.py

For the vector v of tests/fixtures/saes/standard/decompositions.safetensors at gpt2-tiny's blocks.1.hook_resid_pre,
tests/fixtures/saes/standard/table.safetensors holds, for each row of the table (metadata "methods", JSON, in the
table's order), its vector (row.{i} [d_in]) and its steerability (steerability [rows]): the least-squares slope
against the multiplier (metadata "multipliers") of the mean, over the A/B items of tests/fixtures/ab.jsonl, of
logit(matching letter) - logit(other letter) at the answer position, with multiplier x the row's vector added at
every position of block 1's input. The rows:
  steering vector                        v
  SV restricted to / minus features S     keep.1 / remove.1 of decompositions.safetensors (S = its second set)
  SAE reconstruction                     sae-lens decode(encode(v)) (b_dec included, as the SAE outputs it)
  bias-corrected, top k                  the k features of c = encode(v + mean) - encode(mean) with the largest
                                         |c_f| * |W_dec[f]|, decoded without b_dec (mean: the mean activation over
                                         static/datasets/corpus.txt's tokens, position 0 left out)
  bias-corrected reconstruction          decode(encode(v + mean)) - decode(encode(mean))
  gradient pursuit (...), k = K          pursuit.{nonneg|signed}.k{K}.fit of decompositions.safetensors
"""
import json
import os

import torch
from safetensors.torch import load_file, save_file
from sae_lens import SAE
from transformers import AutoModelForCausalLM, AutoTokenizer

from make_science_fixtures import adder

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "..", "tests", "fixtures")
SAE_DIR = os.path.join(FIX, "saes", "standard")
LAYER = 1
MULTS = [-2.0, 0.0, 1.0, 3.0]


def letter(answer):
    return "".join(c for c in answer if c.isalnum())


def main():
    dec = load_file(os.path.join(SAE_DIR, "decompositions.safetensors"))
    meta = json.load(open(os.path.join(SAE_DIR, "cfg.json")))
    assert meta["metadata"]["hook_name"] == f"blocks.{LAYER}.hook_resid_pre"
    sets = json.loads(_meta(os.path.join(SAE_DIR, "decompositions.safetensors"))["sets"])
    ks = json.loads(_meta(os.path.join(SAE_DIR, "decompositions.safetensors"))["ks"])
    path = os.path.join(FIX, "models", "gpt2-tiny")
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float32).eval()
    sae = SAE.load_from_disk(SAE_DIR)
    enc = lambda text: torch.tensor(tok(text, add_special_tokens=False)["input_ids"])
    v = dec["vector"]
    with torch.no_grad():
        passages = [l.strip() for l in open(os.path.join(HERE, "..", "static", "datasets", "corpus.txt")) if l.strip()]
        acts = []
        for text in passages:
            t = enc(text)[: model.config.n_positions]
            if t.numel() >= 2:
                acts.append(model(t[None], output_hidden_states=True).hidden_states[LAYER][0][1:])
        mean = torch.cat(acts).double().mean(0).float()

        rows = [("steering vector", v)]
        label = ", ".join(str(f) for f in sets[1])
        rows.append((f"SV restricted to features {label}", dec["keep.1"]))
        rows.append((f"SV minus features {label}", dec["remove.1"]))
        rows.append(("SAE reconstruction", sae.decode(sae.encode(v[None]))[0]))
        both = torch.stack([v + mean, mean])
        coefs = sae.encode(both)
        c = coefs[0] - coefs[1]
        norms = sae.W_dec.norm(dim=-1)
        order = [f for f in sorted(range(len(c)), key=lambda f: -(c[f].abs() * norms[f]).item()) if c[f] != 0]
        for k in ks:
            kept = torch.zeros_like(c)
            kept[order[:k]] = c[order[:k]]
            rows.append((f"bias-corrected, top {k}", kept @ sae.W_dec))
        rec = sae.decode(coefs)
        rows.append(("bias-corrected reconstruction", rec[0] - rec[1]))
        for name, label in (("nonneg", "non-negative"), ("signed", "signed")):
            for k in ks:
                rows.append((f"gradient pursuit ({label}), k = {k}", dec[f"pursuit.{name}.k{k}.fit"]))

        items = [json.loads(line) for line in open(os.path.join(FIX, "ab.jsonl")) if line.strip()]
        prompts = [it["question"].rstrip() + "\n\nAnswer: (" for it in items]
        ids = []
        for it, p in zip(items, prompts):
            pair = []
            for key in ("answer_matching_behavior", "answer_not_matching_behavior"):
                full = enc(p + letter(it[key]))
                pair.append(int(full[-1]))
            ids.append(pair)
        steer = {"v": None}
        handle = model.transformer.h[LAYER].register_forward_pre_hook(adder(steer), with_kwargs=True)
        slopes = []
        for _, vec in rows:
            means = []
            for m in MULTS:
                steer["v"] = m * vec
                diffs = []
                for p, (mi, ni) in zip(prompts, ids):
                    logits = model(enc(p)[None]).logits[0, -1].double()
                    diffs.append(float(logits[mi] - logits[ni]))
                means.append(sum(diffs) / len(diffs))
            x = torch.tensor(MULTS, dtype=torch.float64)
            y = torch.tensor(means, dtype=torch.float64)
            slopes.append(float(((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum()))
        handle.remove()
    out = {f"row.{i}": vec.float().contiguous() for i, (_, vec) in enumerate(rows)}
    out["steerability"] = torch.tensor(slopes, dtype=torch.float32)
    save_file(out, os.path.join(SAE_DIR, "table.safetensors"),
              metadata={"methods": json.dumps([n for n, _ in rows]), "multipliers": json.dumps(MULTS),
                        "ks": json.dumps(ks), "set": json.dumps(sets[1])})
    for (n, _), s in zip(rows, slopes):
        print(f"{s:+.5f}  {n}")


def _meta(path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        return json.loads(f.read(n))["__metadata__"]


if __name__ == "__main__":
    main()
