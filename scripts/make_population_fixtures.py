#!/usr/bin/env python3
"""Reference values for steerlab's feature population (src/analysis/population.rs: Arad, Mueller & Belinkov
2025 across every feature of an SAE), computed with transformers and sae-lens on the committed fixtures (run
make_fixtures.py and make_sae_fixtures.py first):
    python3 scripts/make_population_fixtures.py

For the `standard` SAE (blocks.1.hook_resid_pre) on gpt2-tiny and all of its features,
tests/fixtures/saes/standard/population.safetensors holds
  output_score, input_score  F32 [d_sae]  Arad et al.'s scores (make_feature_fixtures.py: 20 lens tokens,
                                          amplification 10; input NaN where the feature fires on no passage)
  spearman                   F32 [1]      rank correlation (average ranks) of input vs output, features with an
                                          input score
  q75                        F32 [2]      75th percentile (nearest rank, sorted[round(0.75 (n - 1))]) of output,
                                          input
  shares                     F32 [4]      shares above q75: output, input, both, and output x input
  median_norm                F32 [1]      median (sorted[n // 2]) activation norm at the hook over the corpus tokens
                                          (static/datasets/corpus.txt, position 0 left out)
  unsteered_coherence        F32 [1]      mean log p per generated token of the unsteered continuations
  concept, coherence         F32 [d_sae, S]  per feature and strength: greedy continuations (MAX_NEW tokens, stop
                                          at EOS) of PROMPTS with m x median_norm x the unit decoder row added at
                                          every position of the hook; share of concept words (the one-word words of
                                          the feature's top-20 lens tokens) and coherence under the unsteered model
  unsteered_concept          F32 [d_sae]  the share of the feature's concept words in the unsteered continuations
  success                    F32 [d_sae]  max over strengths of the harmonic mean of max(0, concept - unsteered
                                          share) and min(1, exp(coherence - unsteered coherence))
  top_output, top_input      I64 [TOP]    the TOP features by output score / by input score (NaN last; ties to the
                                          lower index)
"""
import json
import math
import os

import torch
from safetensors.torch import save_file
from sae_lens import SAE
from transformers import AutoModelForCausalLM, AutoTokenizer

import make_feature_fixtures as scores_ref
from make_science_fixtures import adder, words

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
LAYER, TOP, MAX_NEW = 1, 4, 6
STRENGTHS = [0.5, 1.0, 2.0]
PROMPTS = [l.strip() for l in open(os.path.join(ROOT, "static", "datasets", "prompts.txt")) if l.strip()][:4]


def nearest_rank(values, q):
    v = sorted(values)
    return v[int(math.floor(q * (len(v) - 1) + 0.5))]


def ranks(v):
    order = sorted(range(len(v)), key=lambda i: v[i])
    out = [0.0] * len(v)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and v[order[j + 1]] == v[order[i]]:
            j += 1
        for k in order[i : j + 1]:
            out[k] = (i + j) / 2
        i = j + 1
    return out


def spearman(x, y):
    rx, ry = torch.tensor(ranks(x), dtype=torch.float64), torch.tensor(ranks(y), dtype=torch.float64)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    return float((rx * ry).sum() / (rx.pow(2).sum() * ry.pow(2).sum()).sqrt())


def load_tiny():
    """gpt2-tiny, its tokenizer as ids, the standard SAE (blocks.1.hook_resid_pre) and that SAE's folder."""
    path = os.path.join(ROOT, "tests", "fixtures", "models", "gpt2-tiny")
    sae_dir = os.path.join(ROOT, "tests", "fixtures", "saes", "standard")
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float32).eval()
    enc = lambda text: tok(text, add_special_tokens=False)["input_ids"]
    return tok, enc, model, SAE.load_from_disk(sae_dir), sae_dir


def main():
    tok, enc, model, sae, sae_dir = load_tiny()
    d_sae = sae.W_dec.shape[0]

    scores_ref.N = d_sae
    s = scores_ref.scores(20, 10.0)
    out_s, in_s, lens_ids = s["output_score"].tolist(), s["input_score"].tolist(), s["lens_ids"]
    both = [(o, i) for o, i in zip(out_s, in_s) if not math.isnan(i)]
    outs, ins = [b[0] for b in both], [b[1] for b in both]
    q_out, q_in = nearest_rank(outs, 0.75), nearest_rank(ins, 0.75)
    n = len(both)
    high_out = sum(o > q_out for o in outs) / n
    high_in = sum(i > q_in for i in ins) / n
    high_both = sum(o > q_out and i > q_in for o, i in both) / n

    with torch.no_grad():
        passages = [l.strip() for l in open(os.path.join(ROOT, "static", "datasets", "corpus.txt")) if l.strip()]
        norms = []
        for text in passages:
            t = enc(text)[: model.config.n_positions]
            if len(t) < 2:
                continue
            h = model(torch.tensor([t]), output_hidden_states=True).hidden_states[LAYER][0][1:]
            norms += h.norm(dim=-1).tolist()
        norms.sort()
        median = norms[len(norms) // 2]

        unit = sae.W_dec / sae.W_dec.norm(dim=-1, keepdim=True)
        unsteered_gens, unsteered_coh = generate(model, enc, torch.zeros(unit.shape[1]))
        concept = torch.zeros(d_sae, len(STRENGTHS))
        coherence = torch.zeros(d_sae, len(STRENGTHS))
        base = torch.zeros(d_sae)
        success = torch.zeros(d_sae)
        for f in range(d_sae):
            words_f = concept_words(tok, lens_ids[f].tolist())
            base[f] = share(tok, unsteered_gens, words_f)
            best = 0.0
            for si, m in enumerate(STRENGTHS):
                gens, coh = generate(model, enc, m * median * unit[f])
                concept[f, si] = share(tok, gens, words_f)
                coherence[f, si] = coh
                gain = max(0.0, float(concept[f, si]) - float(base[f]))
                fluency = min(1.0, math.exp(coh - unsteered_coh))
                best = max(best, 2 * gain * fluency / (gain + fluency) if gain + fluency > 0 else 0.0)
            success[f] = best
    top_by = lambda key: sorted(range(d_sae), key=lambda f: (-key(f), f))[:TOP]
    top_output = top_by(lambda f: out_s[f])
    top_input = top_by(lambda f: -1.0 if math.isnan(in_s[f]) else in_s[f])
    print("spearman", spearman(ins, outs), "q75", q_out, q_in, "shares", high_out, high_in, high_both)
    print("median", median, "top", top_output, top_input, "success", success[top_output].tolist())
    f32 = lambda v: torch.tensor(v, dtype=torch.float32)
    save_file(
        {
            "output_score": f32(out_s),
            "input_score": f32(in_s),
            "spearman": f32([spearman(ins, outs)]),
            "q75": f32([q_out, q_in]),
            "shares": f32([high_out, high_in, high_both, high_out * high_in]),
            "median_norm": f32([median]),
            "unsteered_coherence": f32([unsteered_coh]),
            "concept": concept.contiguous(),
            "coherence": coherence.contiguous(),
            "unsteered_concept": base,
            "success": success,
            "top_output": torch.tensor(top_output),
            "top_input": torch.tensor(top_input),
        },
        os.path.join(sae_dir, "population.safetensors"),
        metadata={"prompts": json.dumps(PROMPTS), "strengths": json.dumps(STRENGTHS), "top": str(TOP),
                  "max_new_tokens": str(MAX_NEW)},
    )


def concept_words(tok, ids):
    out = []
    for t in ids:
        w = words(tok.decode([t]))
        if len(w) == 1 and w[0] not in out:
            out.append(w[0])
    return out


def share(tok, gens, concept):
    shares = []
    for _, new in gens:
        w = words(tok.decode(new))
        shares.append(sum(x in concept for x in w) / len(w) if w else 0.0)
    return sum(shares) / len(shares)


def generate(model, enc, v):
    """Greedy continuations of PROMPTS with v added at every position of block LAYER's input, and their mean
    log p per generated token under the unsteered model."""
    eos = model.config.eos_token_id
    eos = set(eos if isinstance(eos, list) else [eos])

    gens = []
    handle = model.transformer.h[LAYER].register_forward_pre_hook(adder({"v": v}), with_kwargs=True)
    for prompt in PROMPTS:
        ids, new = enc(prompt), []
        while len(new) < MAX_NEW:
            new.append(int(model(torch.tensor([ids + new])).logits[0, -1].argmax()))
            if new[-1] in eos:
                break
        gens.append((ids, new))
    handle.remove()
    total, count = 0.0, 0
    for ids, new in gens:
        full = ids + new
        logp = torch.log_softmax(model(torch.tensor([full])).logits[0].double(), -1)
        for i in range(len(ids), len(full)):
            total += float(logp[i - 1, full[i]])
            count += 1
    return gens, total / count


if __name__ == "__main__":
    main()
