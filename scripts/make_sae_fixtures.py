#!/usr/bin/env python3
"""Makes random SAEs of the three SAELens architectures (as sae-lens saves them: cfg.json +
sae_weights.safetensors) and sae-lens' own encodings of probe vectors, for steerlab's SAE parity tests.

Run once (needs PyPI sae-lens); the small outputs are committed:
    python3 scripts/make_sae_fixtures.py

tests/fixtures/saes/NAME/expected.safetensors holds probes F32 [n, d_in] (row 0 is the zero vector),
feature_acts F32 [n, d_sae] and reconstruction F32 [n, d_in].
"""
import json
import os

import torch
from safetensors.torch import save_file
from sae_lens import JumpReLUSAE, JumpReLUSAEConfig, StandardSAE, StandardSAEConfig, TopKSAE, TopKSAEConfig
from sae_lens.saes.sae import SAEMetadata

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "saes")
D_IN, D_SAE, N = 32, 96, 6


def meta():
    # the hook of the tiny fixture models that the SAE reads
    return SAEMetadata(hook_name="blocks.1.hook_resid_pre", model_name="gpt2-tiny")


SAES = [
    ("standard", StandardSAE, StandardSAEConfig(d_in=D_IN, d_sae=D_SAE, apply_b_dec_to_input=True, metadata=meta())),
    ("jumprelu", JumpReLUSAE, JumpReLUSAEConfig(d_in=D_IN, d_sae=D_SAE, apply_b_dec_to_input=False, metadata=meta())),
    ("topk", TopKSAE, TopKSAEConfig(d_in=D_IN, d_sae=D_SAE, k=8, apply_b_dec_to_input=True, metadata=meta())),
    # input normalisations and decoder-norm rescaling (the zero probe is left out where sae-lens gives NaN)
    ("standard-constant-norm", StandardSAE, StandardSAEConfig(
        d_in=D_IN, d_sae=D_SAE, apply_b_dec_to_input=True, normalize_activations="constant_norm_rescale",
        metadata=meta())),
    ("jumprelu-layer-norm", JumpReLUSAE, JumpReLUSAEConfig(
        d_in=D_IN, d_sae=D_SAE, apply_b_dec_to_input=True, normalize_activations="layer_norm", metadata=meta())),
    ("standard-expected-average", StandardSAE, StandardSAEConfig(
        d_in=D_IN, d_sae=D_SAE, normalize_activations="expected_average_only_in", metadata=meta())),
    ("topk-rescaled", TopKSAE, TopKSAEConfig(
        d_in=D_IN, d_sae=D_SAE, k=8, apply_b_dec_to_input=True, rescale_acts_by_decoder_norm=True,
        metadata=meta())),
]


def main():
    g = torch.Generator().manual_seed(7)
    for name, cls, cfg in SAES:
        sae = cls(cfg)
        with torch.no_grad():
            for pname, p in sae.named_parameters():
                if pname == "threshold":
                    p.copy_(0.3 * torch.rand(p.shape, generator=g))
                else:
                    p.copy_(0.5 * torch.randn(p.shape, generator=g))
        path = os.path.join(OUT, name)
        os.makedirs(path, exist_ok=True)
        sae.save_model(path)
        probes = torch.randn(N, D_IN, generator=g) * torch.tensor([0.0, 0.1, 1.0, 3.0, 10.0, 1.0])[:, None]
        if cfg.normalize_activations == "constant_norm_rescale":
            probes = probes[1:]
        with torch.no_grad():
            acts = sae.encode(probes)
            rec = sae.decode(acts)
        save_file({"probes": probes.contiguous(), "feature_acts": acts.contiguous(),
                   "reconstruction": rec.contiguous()}, os.path.join(path, "expected.safetensors"))
        print("wrote", path, (acts > 0).sum(-1).tolist())




def sparsify():
    """An EleutherAI sparsify TopK SAE as sparsify saves one hookpoint (layers.1 = output of block 1), and its
    encodings computed by sparsify's formulas: relu(encoder(x - b_dec)) -> top k -> acts @ W_dec + b_dec."""
    g = torch.Generator().manual_seed(11)
    k, n = 6, D_SAE
    enc_w = 0.5 * torch.randn(n, D_IN, generator=g)
    enc_b = 0.5 * torch.randn(n, generator=g)
    w_dec = 0.5 * torch.randn(n, D_IN, generator=g)
    b_dec = 0.5 * torch.randn(D_IN, generator=g)
    path = os.path.join(OUT, "sparsify", "layers.1")
    os.makedirs(path, exist_ok=True)
    cfg = {"expansion_factor": 3, "normalize_decoder": True, "num_latents": 0, "k": k, "multi_topk": False,
           "skip_connection": False, "transcode": False, "d_in": D_IN}
    with open(os.path.join(path, "cfg.json"), "w") as f:
        json.dump(cfg, f)
    save_file({"encoder.weight": enc_w, "encoder.bias": enc_b, "W_dec": w_dec, "b_dec": b_dec},
              os.path.join(path, "sae.safetensors"))
    probes = torch.randn(N, D_IN, generator=g) * torch.tensor([0.0, 0.1, 1.0, 3.0, 10.0, 1.0])[:, None]
    pre = torch.relu((probes - b_dec) @ enc_w.T + enc_b)
    top_acts, top_idx = pre.topk(k, dim=-1)
    acts = torch.zeros_like(pre).scatter(-1, top_idx, top_acts)
    rec = acts @ w_dec + b_dec
    save_file({"probes": probes.contiguous(), "feature_acts": acts.contiguous(), "reconstruction": rec.contiguous()},
              os.path.join(path, "expected.safetensors"))
    print("wrote", path)


def gemma_scope():
    """Gemma Scope SAEs as Google ships them (params.npz under layer_N/width_.../) and their encodings by sae-lens'
    JumpReLU SAE configured as its Gemma Scope loader configures it (apply_b_dec_to_input False, no normalisation).
    One archive is written by np.savez (stored, as the real files), one by np.savez_compressed (deflated)."""
    import numpy as np
    g = torch.Generator().manual_seed(13)
    cfg = JumpReLUSAEConfig(d_in=D_IN, d_sae=D_SAE, apply_b_dec_to_input=False,
                            metadata=SAEMetadata(hook_name="blocks.1.hook_resid_post", model_name="gpt2-tiny"))
    sae = JumpReLUSAE(cfg)
    with torch.no_grad():
        for pname, p in sae.named_parameters():
            p.copy_(0.3 * torch.rand(p.shape, generator=g) if pname == "threshold" else
                    0.5 * torch.randn(p.shape, generator=g))
    params = {k: v.detach().numpy() for k, v in sae.state_dict().items()}
    probes = torch.randn(N, D_IN, generator=g) * torch.tensor([0.0, 0.1, 1.0, 3.0, 10.0, 1.0])[:, None]
    with torch.no_grad():
        acts = sae.encode(probes)
        rec = sae.decode(acts)
    for leaf, save in [("average_l0_9", np.savez), ("compressed", np.savez_compressed)]:
        path = os.path.join(OUT, "gemma-scope-res", "layer_1", "width_96", leaf)
        os.makedirs(path, exist_ok=True)
        save(os.path.join(path, "params.npz"), **params)
        save_file({"probes": probes.contiguous(), "feature_acts": acts.contiguous(),
                   "reconstruction": rec.contiguous()}, os.path.join(path, "expected.safetensors"))
        print("wrote", path, sorted(params))


if __name__ == "__main__":
    main()
    sparsify()
    gemma_scope()
