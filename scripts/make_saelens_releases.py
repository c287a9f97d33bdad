"""Writes src/sae/saelens_releases.tsv: the part of sae-lens's pretrained_saes.yaml that steerlab can run, so that
`--sae gpt2-small-res-jb/blocks.6.hook_resid_pre` (and the lab's pickers) name SAEs as SAELens users do.

Kept: releases for the models steerlab runs (GPT-2 small, Pythia-70M-deduped, Gemma-2), in a format it reads
(SAELens folders: cfg.json + sae_weights.safetensors; Gemma Scope: params.npz), and of those only SAEs that read
the residual stream (blocks.L.hook_resid_pre / _mid / _post). Each release line carries its hub repository, its
model, its format and its config overrides; each SAE line its id, the hook it reads, its folder in the repository
and Neuronpedia's id for it. Where two ids share a folder (Gemma Scope's canonical ids and their `__l0-N` twins),
every row of that folder gets the canonical Neuronpedia id.

    pip install sae-lens && python scripts/make_saelens_releases.py
"""

import json
import re
from pathlib import Path

import sae_lens
import yaml

MODELS = {"gpt2-small", "pythia-70m-deduped", "gemma-2-2b", "gemma-2-9b", "gemma-2-27b"}
FORMATS = {None: "saelens", "gemma_2": "gemma_scope"}
RESID = re.compile(r"^blocks\.(\d+)\.hook_resid_(pre|mid|post)")
GEMMA_LAYER = re.compile(r"(?:^|/)layer_(\d+)/")

table = yaml.safe_load((Path(sae_lens.__file__).parent / "pretrained_saes.yaml").read_text())


def hook_of(release_id, release, sae):
    """The TransformerLens hook the SAE reads, or None when it is not a residual-stream SAE."""
    if release.get("conversion_func") == "gemma_2":
        m = GEMMA_LAYER.search(sae["path"] + "/")
        res = release["repo_id"].endswith("-res")
        return f"blocks.{m.group(1)}.hook_resid_post" if m and res else None
    m = RESID.match(sae["id"])
    return m.group(0) if m else None


rows = []
best_np = {}
for release_id, release in table.items():
    if release.get("model") not in MODELS or release.get("conversion_func") not in FORMATS:
        continue
    saes = []
    for sae in release["saes"]:
        hook, path = hook_of(release_id, release, sae), sae["path"].strip("/")
        if hook is None or path.endswith(".pt") or "\t" in sae["id"] + path:
            continue
        saes.append((sae["id"], hook, path, sae.get("neuronpedia")))
        key = (release["repo_id"], path)
        np_id = sae.get("neuronpedia")
        if np_id and (key not in best_np or "__" in best_np[key]):
            best_np[key] = np_id
    if saes:
        rows.append((release_id, release, saes))

lines = [f"# sae-lens {sae_lens.__version__}: scripts/make_saelens_releases.py"]
n = 0
for release_id, release, saes in rows:
    overrides = release.get("config_overrides")
    overrides = json.dumps(overrides, separators=(",", ":"), sort_keys=True) if overrides else "-"
    fmt = FORMATS[release.get("conversion_func")]
    lines.append(f"release\t{release_id}\t{release['model']}\t{release['repo_id']}\t{fmt}\t{overrides}")
    for sae_id, hook, path, _ in saes:
        np_id = best_np.get((release["repo_id"], path), "-")
        lines.append(f"sae\t{sae_id}\t{hook}\t{path}\t{np_id}")
        n += 1

out = Path(__file__).parent.parent / "src/sae/saelens_releases.tsv"
out.write_text("\n".join(lines) + "\n")
print(f"{len(rows)} releases, {n} SAEs → {out} ({out.stat().st_size} bytes)")
