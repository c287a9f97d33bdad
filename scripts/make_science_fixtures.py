#!/usr/bin/env python3
"""Reference propensities for steerlab's steering tests, computed by transformers on the committed fixture
models (run scripts/make_fixtures.py first). Needs PyPI torch + transformers + safetensors:
    python3 scripts/make_science_fixtures.py

For each model, tests/fixtures/models/NAME/science.safetensors holds, for the A/B items of
tests/fixtures/ab.jsonl (prompt = question + "\\n\\nAnswer: (", read at the answer letter):
  ab.matching / ab.not_matching          I64 [n]          the answer letters' token ids
  ab.caa.blocks.{L}.hook_resid_pre       F32 [d]          CAA vector: mean of resid(matching) - resid(not matching)
  ab.logit_diff.blocks.{L}.hook_resid_pre F32 [m, n]      logit(matching) - logit(not matching) at the answer
                                                          position, with multiplier MULTS[i] x that vector added
                                                          at every position of blocks.{L}.hook_resid_pre
For the contrastive pairs of tests/fixtures/pairs.jsonl, each text after the model's BOS token:
  pairs.logprob_diff.blocks.{L}.hook_resid_pre F32 [m, n] log p(positive) - log p(negative), summed over each
                                                          text's tokens from the first one where the two differ,
                                                          with MULTS[i] x ab.caa.blocks.{L}.hook_resid_pre added
a generation-level score (SCORE): greedy continuations of SCORE["prompts"] (at most SCORE["max_new_tokens"],
stopping at EOS) with strength x ab.caa.blocks.{SCORE["layer"]}.hook_resid_pre added at every position, for
each strength; concept = mean over prompts of the share of generated words (lower-cased runs of letters and
digits) that are concept words (metadata score_concept: the first word steering produced, and "wedding");
coherence = mean over all generated tokens of log p(token | prompt and tokens before it) unsteered:
  score.tokens.{s}.{p} I64 [t]   score.concept F32 [strengths]   score.coherence F32 [strengths]
and an ActAdd check (ACTADD): the position-aligned vector of a prompt pair at blocks.1.hook_resid_pre, the shorter
prompt padded with space tokens, and the steered prompt's last-position logits at its top 20 tokens:
  actadd.vector F32 [k, d]   actadd.top_ids I64 [20]   actadd.top_logits F32 [20]
"""
import json
import os

import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "..", "tests", "fixtures")
MODELS = ["gpt2-tiny", "gpt2-tiny-bf16-prefixed", "pythia-tiny-f16-parallel", "pythia-tiny-f32-sequential"]
MULTS = [-2.0, 0.0, 1.0, 3.0]
ACTADD = {"positive": "Love", "negative": "Hate you", "prompt": "I think that you are", "coef": 2.0, "layer": 1}
SCORE = {"prompts": ["I think that", "The weather today is"], "strengths": [0.0, 4.0, 8.0], "layer": 1,
         "max_new_tokens": 8}


def letter(answer):
    return "".join(c for c in answer if c.isalnum())


def main():
    items = [json.loads(line) for line in open(os.path.join(FIX, "ab.jsonl")) if line.strip()]
    pairs = [json.loads(line) for line in open(os.path.join(FIX, "pairs.jsonl")) if line.strip()]
    for name in MODELS:
        path = os.path.join(FIX, "models", name)
        tok = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float32).eval()
        blocks = model.transformer.h if hasattr(model, "transformer") else model.gpt_neox.layers
        enc = lambda text: torch.tensor(tok(text, add_special_tokens=False)["input_ids"])
        bos = model.config.bos_token_id
        enc_bos = lambda text: torch.cat([torch.tensor([bos]), enc(text)])
        prompts = [it["question"].rstrip() + "\n\nAnswer: (" for it in items]
        m_ids, n_ids = [], []
        for it, p in zip(items, prompts):
            base = enc(p)
            for ans, ids in ((it["answer_matching_behavior"], m_ids), (it["answer_not_matching_behavior"], n_ids)):
                full = enc(p + letter(ans))
                assert full.numel() == base.numel() + 1 and torch.equal(full[:-1], base)
                ids.append(int(full[-1]))
        out = {"ab.matching": torch.tensor(m_ids), "ab.not_matching": torch.tensor(n_ids)}
        steer = {"v": None}

        def add(module, args, kwargs):
            if steer["v"] is None:
                return None
            if args:
                return (args[0] + steer["v"],) + tuple(args[1:]), kwargs
            kwargs["hidden_states"] = kwargs["hidden_states"] + steer["v"]
            return args, kwargs

        with torch.no_grad():
            for layer in range(len(blocks)):
                hook = f"blocks.{layer}.hook_resid_pre"
                diffs = []
                for it, p in zip(items, prompts):
                    hs = [model(enc(p + letter(it[k]))[None], output_hidden_states=True).hidden_states[layer][0, -1]
                          for k in ("answer_matching_behavior", "answer_not_matching_behavior")]
                    diffs.append(hs[0] - hs[1])
                v = torch.stack(diffs).mean(0)
                out[f"ab.caa.{hook}"] = v.contiguous()
                handle = blocks[layer].register_forward_pre_hook(add, with_kwargs=True)
                rows = []
                for mult in MULTS:
                    steer["v"] = mult * v
                    row = []
                    for p, mi, ni in zip(prompts, m_ids, n_ids):
                        logits = model(enc(p)[None]).logits[0, -1].float()
                        row.append(logits[mi] - logits[ni])
                    rows.append(torch.stack(row))
                pair_rows = []
                for mult in MULTS:
                    steer["v"] = mult * v
                    pair_rows.append(torch.stack([pair_logprob_diff(model, enc_bos, p) for p in pairs]))
                steer["v"] = None
                handle.remove()
                out[f"ab.logit_diff.{hook}"] = torch.stack(rows).contiguous()
                out[f"pairs.logprob_diff.{hook}"] = torch.stack(pair_rows).contiguous()
            out.update(actadd(model, blocks, tok, enc))
            score, concept = steer_score(model, blocks, tok, enc, out[f"ab.caa.blocks.{SCORE['layer']}.hook_resid_pre"])
            out.update(score)
        meta = {"multipliers": json.dumps(MULTS), "actadd": json.dumps(ACTADD), "score": json.dumps(SCORE),
                "score_concept": json.dumps(concept)}
        save_file(out, os.path.join(path, "science.safetensors"), metadata=meta)
        print("wrote", name, out["ab.logit_diff.blocks.1.hook_resid_pre"][:, 0].tolist())


def pair_logprob_diff(model, enc_bos, pair):
    pos, neg = enc_bos(pair["positive"]), enc_bos(pair["negative"])
    shared = 0
    while shared < min(pos.numel(), neg.numel()) and pos[shared] == neg[shared]:
        shared += 1

    def score(ids):
        logp = torch.log_softmax(model(ids[None]).logits[0].float(), -1)
        return sum(logp[i - 1, ids[i]] for i in range(max(shared, 1), ids.numel()))

    return score(pos) - score(neg)


def words(text):
    out, word = [], ""
    for c in text:
        if c.isalnum():
            word += c
        elif word:
            out.append(word.lower())
            word = ""
    return out + ([word.lower()] if word else [])


def adder(steer):
    """A forward pre-hook (with_kwargs) adding steer["v"] to a block's input at every position."""

    def add(module, args, kwargs):
        if args:
            return (args[0] + steer["v"],) + tuple(args[1:]), kwargs
        kwargs["hidden_states"] = kwargs["hidden_states"] + steer["v"]
        return args, kwargs

    return add


def steer_score(model, blocks, tok, enc, v):
    eos = model.config.eos_token_id
    eos = set(eos if isinstance(eos, list) else [eos])
    n_ctx = model.config.max_position_embeddings
    steer = {"v": None}
    add = adder(steer)

    gens = {}
    handle = blocks[SCORE["layer"]].register_forward_pre_hook(add, with_kwargs=True)
    for si, strength in enumerate(SCORE["strengths"]):
        steer["v"] = strength * v
        for pi, prompt in enumerate(SCORE["prompts"]):
            ids = enc(prompt).tolist()
            new = []
            while len(new) < SCORE["max_new_tokens"] and len(ids) + len(new) <= n_ctx:
                logits = model(torch.tensor([ids + new])).logits[0, -1]
                new.append(int(logits.argmax()))
                if new[-1] in eos:
                    break
            gens[(si, pi)] = (ids, new)
    handle.remove()
    concept = [words(tok.decode(gens[(len(SCORE["strengths"]) - 1, 0)][1]))[0], "wedding"]
    out = {}
    concept_scores, coherence = [], []
    for si in range(len(SCORE["strengths"])):
        total, count, shares = 0.0, 0, []
        for pi in range(len(SCORE["prompts"])):
            ids, new = gens[(si, pi)]
            out[f"score.tokens.{si}.{pi}"] = torch.tensor(new, dtype=torch.int64)
            full = (ids + new)[:n_ctx]
            logp = torch.log_softmax(model(torch.tensor([full])).logits[0].double(), -1)
            for i in range(len(ids), len(full)):
                total += float(logp[i - 1, full[i]])
                count += 1
            w = words(tok.decode(new))
            shares.append(sum(x in concept for x in w) / len(w) if w else 0.0)
        concept_scores.append(sum(shares) / len(shares))
        coherence.append(total / count)
    out["score.concept"] = torch.tensor(concept_scores, dtype=torch.float32)
    out["score.coherence"] = torch.tensor(coherence, dtype=torch.float32)
    return out, concept


def actadd(model, blocks, tok, enc):
    pos, neg = enc(ACTADD["positive"]), enc(ACTADD["negative"])
    space = enc(" ")
    assert space.numel() == 1
    k = max(pos.numel(), neg.numel())
    pad = lambda ids: torch.cat([ids, space.repeat(k - ids.numel())])
    hidden = lambda ids: model(ids[None], output_hidden_states=True).hidden_states[ACTADD["layer"]][0]
    v = hidden(pad(pos)) - hidden(pad(neg))  # [k, d]

    def add(module, args, kwargs):
        h = args[0] if args else kwargs["hidden_states"]
        h = h.clone()
        h[0, :k] += ACTADD["coef"] * v
        if args:
            return (h,) + tuple(args[1:]), kwargs
        kwargs["hidden_states"] = h
        return args, kwargs

    handle = blocks[ACTADD["layer"]].register_forward_pre_hook(add, with_kwargs=True)
    logits = model(enc(ACTADD["prompt"])[None]).logits[0, -1].float()
    handle.remove()
    top = logits.topk(20)
    return {"actadd.vector": v.contiguous(), "actadd.top_ids": top.indices, "actadd.top_logits": top.values.contiguous()}


if __name__ == "__main__":
    main()
