#!/usr/bin/env python3
"""Reference decompositions for steerlab's SAE tests, computed in float64 numpy/torch independently of
steerlab, on the committed standard SAE fixture (run scripts/make_sae_fixtures.py first; its decoder rows are
not orthogonal, so no step below is trivially exact):
    python3 scripts/make_decomposition_fixtures.py

tests/fixtures/saes/standard/decompositions.safetensors holds the vector v (row 1 of that SAE's probes) and
- feature edits: for each feature set S in SETS (metadata "sets", JSON), the least-squares fit of v by the
  decoder rows W_dec[S] (keep.{i} = W_dec[S]^T pinv(W_dec[S]^T) v, the projection onto their span) and v minus
  it (remove.{i});
- gradient pursuit (Blumensath & Davies 2008, as Conmy & Nanda 2024 use it) on the unit-norm decoder: each step
  adds the atom most aligned with the residual (largest inner product, or largest |inner product| when signed)
  to the support, then takes the exact line-search step along the gradient restricted to the support
  (non-negative: coefficients clipped at 0 after the step). pursuit.{signed|nonneg}.k{K}.coefs [d_sae] and
  .fit [d_in] after K steps, for K in KS (metadata "ks");
- signed projections (Mayne et al. 2024), with the SAE loaded and run by sae-lens (an untied SAE: W_enc is not
  W_dec^T, so swapping them would show): proj.encoder = v @ W_enc, proj.decoder = v . W_dec[f] / |W_dec[f]|,
  proj.pre (pre-activations) and proj.acts = sae.encode(v) [d_sae]; proj.negative_share = the share of
  sum(decoder^2) on negative projections; for the TOP features with the most negative decoder projection
  (proj.partner_features), the feature whose decoder is most anti-aligned (proj.partners, lowest cosine, itself
  excluded) and that cosine (proj.partner_cosines); for the default-component strips, sae-lens's b_enc
  (proj.b_enc) and its encoding of RESCALE x v (proj.acts_rescaled); against encode(0), for v and RESCALE x v:
  the cosine of the encodings (proj.cos_zero [2]) and the share of the encoding's top-TOP active features that
  encode(0)'s top-TOP active features hold (proj.overlap_zero [2]); for each (negative feature, partner), their
  mean sae-lens activations over probes rows 2-3 as positive prompts and rows 4-5 as negative ones
  (proj.partner_on_positive, proj.partner_on_negative [m, 2]).
"""
import json
import os

import numpy as np
import torch
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
SAE = SAE_DIR = os.path.join(HERE, "..", "tests", "fixtures", "saes", "standard")
# One feature, several, a repeated one (a dependent row adds nothing to the span).
SETS = [[3], [3, 7, 11, 20], [5, 5, 9]]
KS = [1, 2, 4, 8]
TOP = 8
RESCALE = 4.0


def pursuit(dictionary, x, steps, signed):
    coefs = np.zeros(dictionary.shape[0])
    support = np.zeros(dictionary.shape[0], dtype=bool)
    residual = x.copy()
    out = {}
    for step in range(1, steps + 1):
        inner = dictionary @ residual
        score = np.abs(inner) if signed else inner
        best = int(np.argmax(score))
        if score[best] > 1e-12:
            support[best] = True
        grad = np.where(support, inner, 0.0)
        c = grad @ dictionary
        size = (c @ residual) / max(c @ c, 1e-20)
        coefs = coefs + size * grad
        if not signed:
            coefs = np.maximum(coefs, 0.0)
        fit = coefs @ dictionary
        residual = x - fit
        out[step] = (coefs.copy(), fit.copy())
    return out


def overlap(acts, zero):
    top = lambda a: {int(f) for f in torch.argsort(a, descending=True, stable=True)[:TOP] if a[f] > 0}
    mine = top(acts)
    return len(mine & top(zero)) / max(len(mine), 1)


def projections(v, probes):
    from sae_lens import SAE

    sae = SAE.load_from_disk(SAE_DIR, device="cpu")
    with torch.no_grad():
        acts = sae.encode(v[None])[0]
        acts_rescaled = sae.encode(RESCALE * v[None])[0]
        zero = sae.encode(torch.zeros_like(v)[None])[0]
        w_enc, w_dec = sae.W_enc.double(), sae.W_dec.double()
        x = v.double()
        pre = (x - sae.b_dec.double()) @ w_enc + sae.b_enc.double()
    assert torch.allclose(torch.relu(pre).float(), acts, atol=1e-5), "pre-activations do not give sae-lens's encoding"
    assert (w_enc - w_dec.T).abs().max() > 0.1, "the SAE should be untied"
    unit = w_dec / w_dec.norm(dim=1, keepdim=True)
    decoder = unit @ x
    total, negative = float((decoder ** 2).sum()), float((decoder[decoder < 0] ** 2).sum())
    order = torch.argsort(decoder)[:TOP]
    negative_features = [int(f) for f in order if decoder[f] < 0]
    cos = unit @ unit.T
    partners, cosines = [], []
    for f in negative_features:
        col = cos[:, f].clone()
        col[f] = float("inf")
        g = int(torch.argmin(col))
        partners.append(g)
        cosines.append(float(cos[g, f]))
    f32 = lambda t: torch.as_tensor(t, dtype=torch.float32).contiguous()
    pairs = [[f, g] for f, g in zip(negative_features, partners)]
    with torch.no_grad():
        on = lambda rows: torch.stack([sae.encode(rows).mean(0)[p] for p in pairs])
        on_positive, on_negative = on(probes[2:4]), on(probes[4:6])
    return {
        "proj.encoder": f32(x @ w_enc), "proj.decoder": f32(decoder), "proj.pre": f32(pre), "proj.acts": f32(acts),
        "proj.negative_share": f32([negative / total]),
        "proj.partner_features": torch.tensor(negative_features), "proj.partners": torch.tensor(partners),
        "proj.partner_cosines": f32(cosines),
        "proj.b_enc": f32(sae.b_enc.detach()), "proj.acts_rescaled": f32(acts_rescaled),
        "proj.cos_zero": f32([float(torch.nn.functional.cosine_similarity(a.double(), zero.double(), dim=0))
                              for a in (acts, acts_rescaled)]),
        "proj.overlap_zero": f32([overlap(a, zero) for a in (acts, acts_rescaled)]),
        "proj.partner_on_positive": f32(on_positive), "proj.partner_on_negative": f32(on_negative),
    }


def main():
    w_dec = load_file(os.path.join(SAE, "sae_weights.safetensors"))["W_dec"].double()  # [d_sae, d_in]
    v = load_file(os.path.join(SAE, "expected.safetensors"))["probes"][1].double()
    out = {"vector": v.float().contiguous()}
    for i, s in enumerate(SETS):
        basis = w_dec[s].T  # [d_in, k]
        fit = basis @ (torch.linalg.pinv(basis) @ v)
        out[f"keep.{i}"] = fit.float().contiguous()
        out[f"remove.{i}"] = (v - fit).float().contiguous()
    dictionary = w_dec.numpy()
    dictionary = dictionary / np.linalg.norm(dictionary, axis=1, keepdims=True)
    gram = dictionary @ dictionary.T
    assert np.abs(gram - np.eye(len(gram))).max() > 0.1, "the decoder should not be orthonormal"
    for signed, name in ((True, "signed"), (False, "nonneg")):
        steps = pursuit(dictionary, v.numpy(), max(KS), signed)
        for k in KS:
            coefs, fit = steps[k]
            out[f"pursuit.{name}.k{k}.coefs"] = torch.tensor(coefs, dtype=torch.float32)
            out[f"pursuit.{name}.k{k}.fit"] = torch.tensor(fit, dtype=torch.float32)
    probes = load_file(os.path.join(SAE, "expected.safetensors"))["probes"]
    out.update(projections(v.float(), probes))
    meta = {"sets": json.dumps(SETS), "ks": json.dumps(KS), "top": json.dumps(TOP), "rescale": json.dumps(RESCALE)}
    save_file(out, os.path.join(SAE, "decompositions.safetensors"), metadata=meta)
    print("wrote", [float(out[f"pursuit.signed.k{k}.fit"].norm()) for k in KS], float(v.norm()))


if __name__ == "__main__":
    main()
