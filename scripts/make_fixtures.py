#!/usr/bin/env python3
"""Makes tiny random-weight models in the real Hugging Face hub layout, and the reference outputs that
transformers computes for them, for steerlab's parity tests.

Run once (needs PyPI torch + transformers + safetensors); the small outputs are committed:
    python3 scripts/make_fixtures.py [--shared ../shared]

Per model, tests/fixtures/models/NAME/ holds config.json, model.safetensors, tokenizer.json, and
expected.safetensors with, for prompt i:
  p{i}.tokens                     I64 [seq]        tokenizer.json's ids, no special tokens added (Gemma: <bos> first)
  p{i}.logits                     F32 [seq, k]     logits at those ids
  p{i}.logsumexp                  F32 [seq]        logsumexp over the whole vocabulary (checks every logit)
  p{i}.blocks.{L}.hook_resid_pre  F32 [seq, d]     every layer
  p{i}.blocks.{L}.hook_resid_mid  F32 [seq, d]     every layer (parallel NeoX: resid_pre + attn_out)
  p{i}.blocks.{last}.hook_resid_post
  p{i}.ln_final.hook_normalized   F32 [seq, d]
  p{i}.steered.logsumexp / p{i}.steered.logits   the same with STEER_COEF * steering_vector added at STEER_HOOK
  p{i}.steered_from.*             the same, steering only positions >= STEER_FROM
  p{i}.greedy / p{i}.steered_greedy  I64 [GEN]     greedy continuation with KV cache (transformers generate)
plus caa.blocks.{STEER_LAYER}.hook_resid_pre F32 [d] (the CAA vector of tests/fixtures/pairs.jsonl), steering_vector F32 [d] and logit_ids I64 [k], the vocabulary ids (a fixed stride) whose logits are
stored. The metadata of expected.safetensors holds the prompts as JSON.
"""
import argparse
import json
import os
import shutil

import torch
from safetensors.torch import save_file
from transformers import (AutoTokenizer, Gemma2Config, Gemma2ForCausalLM, GPT2Config, GPT2LMHeadModel,
                          GPTNeoXConfig, GPTNeoXForCausalLM, PreTrainedTokenizerFast)

PROMPTS = [
    "Hello world",
    "  two leading spaces\tand a tab",
    "The year 2024 had 366 days; 3.14159 is pi.",
    "Unicode: café, naïve, Ελληνικά, 日本語",
    "Emoji 🙂🚀 and a family 👨‍👩‍👧!",
    # longer than the 50-token truncation that GPT-2's tokenizer.json carries (transformers ignores it)
    " ".join(["step"] * 56),
]
LOGIT_STRIDE = 13
STEER_LAYER = 1
STEER_COEF = 4.0
STEER_FROM = 2
GEN = 8

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "models")


def gpt2_configs():
    base = dict(vocab_size=50257, n_positions=64, n_embd=32, n_layer=3, n_head=4,
                activation_function="gelu_new", layer_norm_epsilon=1e-5, bos_token_id=50256,
                eos_token_id=50256)
    return [
        ("gpt2-tiny", GPT2Config(**base), torch.float32, "bare"),
        ("gpt2-tiny-bf16-prefixed", GPT2Config(**base), torch.bfloat16, "prefixed"),
    ]


def neox_configs():
    base = dict(vocab_size=50304, hidden_size=32, num_hidden_layers=3, num_attention_heads=2,
                intermediate_size=128, hidden_act="gelu", max_position_embeddings=64,
                layer_norm_eps=1e-5, bos_token_id=0, eos_token_id=0, tie_word_embeddings=False)
    return [
        # older config keys, fp16 file, parallel residual (as Pythia ships)
        ("pythia-tiny-f16-parallel", dict(base, use_parallel_residual=True), torch.float16,
         dict(rotary_pct=0.25, rotary_emb_base=10000)),
        # newer config keys, fp32 file, sequential residual
        ("pythia-tiny-f32-sequential", dict(base, use_parallel_residual=False), torch.float32,
         dict(rope_parameters=dict(rope_type="default", rope_theta=5000.0, partial_rotary_factor=0.5))),
    ]


def make_neox_config(kw, rope):
    cfg = GPTNeoXConfig(**kw)
    if "rotary_pct" in rope:
        cfg.rotary_pct = rope["rotary_pct"]
        cfg.rotary_emb_base = rope["rotary_emb_base"]
        if hasattr(cfg, "rope_parameters") and isinstance(cfg.rope_parameters, dict):
            cfg.rope_parameters = dict(rope_type="default", rope_theta=float(rope["rotary_emb_base"]),
                                       partial_rotary_factor=rope["rotary_pct"])
        cfg.partial_rotary_factor = rope["rotary_pct"]
        cfg.rope_theta = float(rope["rotary_emb_base"])
    else:
        p = rope["rope_parameters"]
        cfg.rope_parameters = p
        cfg.rotary_pct = p["partial_rotary_factor"]
        cfg.rotary_emb_base = p["rope_theta"]
        cfg.partial_rotary_factor = p["partial_rotary_factor"]
        cfg.rope_theta = p["rope_theta"]
    return cfg


def gemma2_configs():
    """Gemma-2's architecture at tiny size: grouped-query attention (4 query heads, 2 key/value heads), a head
    dim unrelated to hidden/heads, query_pre_attn_scalar != head_dim, soft-capped attention and final logits
    low enough to bite, and a sliding window of 5 on the layers layer_types names (prompts are longer)."""
    base = dict(vocab_size=512, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                num_attention_heads=4, num_key_value_heads=2, head_dim=16, hidden_activation="gelu_pytorch_tanh",
                max_position_embeddings=64, rms_norm_eps=1e-6, bos_token_id=2, eos_token_id=1, pad_token_id=0,
                query_pre_attn_scalar=24, attn_logit_softcapping=5.0, final_logit_softcapping=8.0,
                sliding_window=5, tie_word_embeddings=True, attention_bias=False)
    return [
        # as google/gemma-2-2b's config.json: no layer_types (even layers slide), rope_theta at the top level
        ("gemma2-tiny", dict(base, rope_theta=10000.0), None),
        # newer keys: explicit layer_types and rope_parameters
        ("gemma2-tiny-layer-types", dict(base, rope_parameters=dict(rope_type="default", rope_theta=500.0)),
         ["full_attention", "sliding_attention", "sliding_attention"]),
    ]


GEMMA_CORPUS = [
    "The quick brown fox jumps over the lazy dog.", "Hello world, hello there.", "The year had many days.",
    "Steering vectors shift behaviour; sparse autoencoders find features.", "step step step step",
    "Unicode and emoji are bytes when the vocabulary lacks them.", "two leading spaces and a tab",
]


def make_gemma_tokenizer(path):
    """A small tokenizer.json in Gemma's layout: BPE over text whose spaces became U+2581, byte fallback to
    <0xNN> tokens, <pad>/<eos>/<bos>/<unk> at 0-3, and a post-processor that puts <bos> first."""
    from tokenizers import Tokenizer, decoders, normalizers, processors
    from tokenizers.models import BPE
    from tokenizers.trainers import BpeTrainer
    norm = normalizers.Replace(" ", "\u2581")
    trainer_tok = Tokenizer(BPE(unk_token="<unk>"))
    trainer_tok.normalizer = norm
    trainer_tok.train_from_iterator(GEMMA_CORPUS * 4, BpeTrainer(vocab_size=300, show_progress=False))
    trained = json.loads(trainer_tok.to_str())["model"]
    specials = ["<pad>", "<eos>", "<bos>", "<unk>"]
    vocab = {t: i for i, t in enumerate(specials + [f"<0x{b:02X}>" for b in range(256)])}
    for t in sorted(trained["vocab"], key=trained["vocab"].get):
        vocab.setdefault(t, len(vocab))
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in trained["merges"]]
    tok = Tokenizer(BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = norm
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse()])
    tok.add_special_tokens(specials)
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 2)])
    tok.save(os.path.join(path, "tokenizer.json"))
    return len(vocab)


def write_config(path, model_type, kw, rope=None):
    """The config.json exactly as the hub has it for such a model (older or newer rope keys)."""
    cfg = dict(kw)
    cfg["model_type"] = model_type
    cfg["architectures"] = [{"gpt2": "GPT2LMHeadModel", "gpt_neox": "GPTNeoXForCausalLM",
                              "gemma2": "Gemma2ForCausalLM"}[model_type]]
    if rope:
        cfg.update(rope)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)


def randomise(model, seed):
    """transformers' init gives tiny weights; larger ones make every hook and logit carry signal."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "ln" in name or "norm" in name:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g) if name.endswith("weight")
                        else 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.15 * torch.randn(p.shape, generator=g))


def reference(model, tok, path, blocks_prefix, d, n_layer, bos=False):
    """Runs the prompts through transformers in float32 with hooks that record TransformerLens hooks;
    `bos`: tokens start with <bos>, as Gemma needs."""
    model.eval()
    blocks = blocks_prefix(model)
    g = torch.Generator().manual_seed(1234)
    steering_vector = (torch.randn(d, generator=g) * 1.5).float()
    out = {"steering_vector": steering_vector.contiguous()}
    vocab = model.config.vocab_size
    ids = torch.arange(0, vocab, LOGIT_STRIDE)
    out["logit_ids"] = ids

    captured = {}
    steer = {"on": False}

    def pre_hook(i):
        def fn(module, args, kwargs):
            h = args[0] if args else kwargs["hidden_states"]
            if steer["on"] and i == STEER_LAYER:
                mask = (torch.arange(h.shape[1]) >= steer.get("from", 0)).float()[None, :, None]
                h = h + STEER_COEF * steering_vector * mask
            captured[f"blocks.{i}.hook_resid_pre"] = h.detach().clone()
            if args:
                return (h,) + tuple(args[1:]), kwargs
            kwargs["hidden_states"] = h
            return args, kwargs
        return fn

    def post_hook(i):
        def fn(module, args, kwargs, output):
            h = output[0] if isinstance(output, tuple) else output
            captured[f"blocks.{i}.hook_resid_post"] = h.detach().clone()
        return fn

    def attn_hook(i):
        def fn(module, args, output):
            a = output[0] if isinstance(output, tuple) else output
            captured[f"attn_out.{i}"] = a.detach().clone()
        return fn

    def ln_final_hook(module, args, output):
        captured["ln_final.hook_normalized"] = output.detach().clone()

    handles = []
    for i, blk in enumerate(blocks):
        handles.append(blk.register_forward_pre_hook(pre_hook(i), with_kwargs=True))
        handles.append(blk.register_forward_hook(post_hook(i), with_kwargs=True))
        # Gemma-2 normalises the attention output before adding it: resid_mid reads that.
        attn = getattr(blk, "post_attention_layernorm", None) or getattr(blk, "attn", None) or blk.attention
        handles.append(attn.register_forward_hook(attn_hook(i)))
    final_ln = (model.transformer.ln_f if hasattr(model, "transformer") else
                model.gpt_neox.final_layer_norm if hasattr(model, "gpt_neox") else model.model.norm)
    handles.append(final_ln.register_forward_hook(ln_final_hook))

    for p, text in enumerate(PROMPTS):
        tokens = torch.tensor(tok(text, add_special_tokens=bos)["input_ids"], dtype=torch.long)
        assert tokens.numel() > 0
        with torch.no_grad():
            steer["on"] = False
            captured.clear()
            logits = model(tokens[None]).logits[0].float()
            out[f"p{p}.tokens"] = tokens
            out[f"p{p}.logits"] = logits[:, ids].contiguous()
            out[f"p{p}.logsumexp"] = torch.logsumexp(logits, -1).contiguous()
            for i in range(n_layer):
                pre = captured[f"blocks.{i}.hook_resid_pre"][0]
                out[f"p{p}.blocks.{i}.hook_resid_pre"] = pre.contiguous()
                out[f"p{p}.blocks.{i}.hook_resid_mid"] = (pre + captured[f"attn_out.{i}"][0]).contiguous()
            out[f"p{p}.blocks.{n_layer - 1}.hook_resid_post"] = \
                captured[f"blocks.{n_layer - 1}.hook_resid_post"][0].contiguous()
            out[f"p{p}.ln_final.hook_normalized"] = captured["ln_final.hook_normalized"][0].contiguous()

            steer["on"] = True
            slogits = model(tokens[None]).logits[0].float()
            out[f"p{p}.steered.logits"] = slogits[:, ids].contiguous()
            out[f"p{p}.steered.logsumexp"] = torch.logsumexp(slogits, -1).contiguous()
            steer["from"] = STEER_FROM  # only from this position on
            slogits = model(tokens[None]).logits[0].float()
            steer["from"] = 0
            out[f"p{p}.steered_from.logits"] = slogits[:, ids].contiguous()
            out[f"p{p}.steered_from.logsumexp"] = torch.logsumexp(slogits, -1).contiguous()

            for key, on in (("greedy", False), ("steered_greedy", True)):
                steer["on"] = on
                gen = model.generate(tokens[None], max_new_tokens=GEN, do_sample=False, use_cache=True,
                                     pad_token_id=model.config.eos_token_id,
                                     attention_mask=torch.ones_like(tokens[None]))
                out[f"p{p}.{key}"] = gen[0, tokens.numel():].contiguous()
            steer["on"] = False
    # CAA: mean over tests/fixtures/pairs.jsonl of resid_pre(positive) - resid_pre(negative) at the last token
    with open(os.path.join(HERE, "..", "tests", "fixtures", "pairs.jsonl")) as f:
        pairs = [json.loads(line) for line in f if line.strip()]
    def last(text):
        t = torch.tensor(tok(text, add_special_tokens=bos)["input_ids"])[None]
        with torch.no_grad():
            return model(t, output_hidden_states=True).hidden_states[STEER_LAYER][0, -1].float()
    out[f"caa.blocks.{STEER_LAYER}.hook_resid_pre"] = torch.stack(
        [last(p["positive"]) - last(p["negative"]) for p in pairs]).mean(0).contiguous()
    for h in handles:
        h.remove()
    save_file(out, os.path.join(path, "expected.safetensors"),
              metadata={"prompts": json.dumps(PROMPTS), "steer_hook": f"blocks.{STEER_LAYER}.hook_resid_pre",
                        "steer_coef": str(STEER_COEF), "steer_from": str(STEER_FROM), "logit_stride": str(LOGIT_STRIDE)})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=os.path.join(HERE, "..", "..", "shared"))
    ap.add_argument("--only", nargs="*", help="make only these fixtures")
    args = ap.parse_args()
    torch.manual_seed(0)

    for n, (name, cfg, dtype, keys) in enumerate(gpt2_configs()):
        if args.only and name not in args.only:
            continue
        path = os.path.join(OUT, name)
        os.makedirs(path, exist_ok=True)
        shutil.copy(os.path.join(args.shared, "tokenizers", "gpt2", "tokenizer.json"), path)
        model = GPT2LMHeadModel(cfg)
        randomise(model, 10 + n)
        model = model.to(dtype)
        sd = {k: v.contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}
        if keys == "bare":
            # as openai-community/gpt2 ships: bare keys plus the causal-mask buffers
            sd = {k.removeprefix("transformer."): v for k, v in sd.items()}
            for i in range(cfg.n_layer):
                sd[f"h.{i}.attn.bias"] = torch.tril(torch.ones(cfg.n_positions, cfg.n_positions,
                                                               dtype=dtype)).view(1, 1, cfg.n_positions,
                                                                                  cfg.n_positions)
        save_file(sd, os.path.join(path, "model.safetensors"), metadata={"format": "pt"})
        write_config(path, "gpt2", cfg.to_diff_dict() | dict(
            n_embd=cfg.n_embd, n_head=cfg.n_head, n_layer=cfg.n_layer, n_positions=cfg.n_positions,
            vocab_size=cfg.vocab_size, activation_function=cfg.activation_function,
            layer_norm_epsilon=cfg.layer_norm_epsilon, bos_token_id=50256, eos_token_id=50256))
        tok = AutoTokenizer.from_pretrained(path)
        ref = model.float()
        reference(ref, tok, path, lambda m: m.transformer.h, cfg.n_embd, cfg.n_layer, False)
        print("wrote", path)

    for n, (name, kw, dtype, rope) in enumerate(neox_configs()):
        if args.only and name not in args.only:
            continue
        path = os.path.join(OUT, name)
        os.makedirs(path, exist_ok=True)
        shutil.copy(os.path.join(args.shared, "tokenizers", "pythia", "tokenizer.json"), path)
        cfg = make_neox_config(kw, rope)
        model = GPTNeoXForCausalLM(cfg)
        randomise(model, 20 + n)
        model = model.to(dtype)
        sd = {k: v.contiguous() for k, v in model.state_dict().items()}
        if "rotary_pct" in rope:
            # as Pythia checkpoints ship: `embed_out`, and mask and rotary buffers beside the weights
            # (transformers 5 saves the unembedding as `lm_head`, kept in the other fixture)
            sd["embed_out.weight"] = sd.pop("lm_head.weight")
            n_ctx = kw["max_position_embeddings"]
            for i in range(kw["num_hidden_layers"]):
                sd[f"gpt_neox.layers.{i}.attention.bias"] = torch.tril(torch.ones(n_ctx, n_ctx, dtype=torch.bool)
                                                                       ).view(1, 1, n_ctx, n_ctx)
                sd[f"gpt_neox.layers.{i}.attention.masked_bias"] = torch.tensor(-1e9)
                sd[f"gpt_neox.layers.{i}.attention.rotary_emb.inv_freq"] = torch.ones(2)
        save_file(sd, os.path.join(path, "model.safetensors"), metadata={"format": "pt"})
        write_config(path, "gpt_neox", kw, rope)
        tok = AutoTokenizer.from_pretrained(path)
        ref = model.float()
        reference(ref, tok, path, lambda m: m.gpt_neox.layers, kw["hidden_size"], kw["num_hidden_layers"])
        print("wrote", path)

    for n, (name, kw, layer_types) in enumerate(gemma2_configs()):
        if args.only and name not in args.only:
            continue
        path = os.path.join(OUT, name)
        os.makedirs(path, exist_ok=True)
        assert make_gemma_tokenizer(path) <= kw["vocab_size"]
        cfg = Gemma2Config(**kw, **({"layer_types": layer_types} if layer_types else {}))
        model = Gemma2ForCausalLM(cfg)
        model.config._attn_implementation = "eager"
        randomise(model, 30 + n)
        # as google/gemma-2-2b ships: `model.` keys, no lm_head (tied), float32, in two shards
        sd = {k: v.contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}
        shard(sd, path, 2)
        write_config(path, "gemma2", dict(kw, **({"layer_types": layer_types} if layer_types else {})))
        tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(path, "tokenizer.json"), bos_token="<bos>",
                                      eos_token="<eos>", pad_token="<pad>", unk_token="<unk>")
        reference(model, tok, path, lambda m: m.model.layers, kw["hidden_size"], kw["num_hidden_layers"], bos=True)
        print("wrote", path)


def shard(sd, path, n):
    """Writes `sd` as model-0000i-of-0000n.safetensors plus model.safetensors.index.json, as the hub does."""
    names = sorted(sd)
    weight_map = {}
    for i in range(n):
        file = f"model-{i + 1:05d}-of-{n:05d}.safetensors"
        part = {k: sd[k] for k in names[i::n]}
        save_file(part, os.path.join(path, file), metadata={"format": "pt"})
        weight_map.update({k: file for k in part})
    total = sum(v.numel() * v.element_size() for v in sd.values())
    with open(os.path.join(path, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2, sort_keys=True)


if __name__ == "__main__":
    main()
