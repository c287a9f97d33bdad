"""Writes www/src/gemma_scope_neuronpedia.tsv: for each Gemma Scope residual-stream SAE that Neuronpedia shows,
its hub repo, its folder there and Neuronpedia's `model/source` id, as sae-lens's pretrained_saes.yaml records
them. Canonical ids are kept where a folder has two (the canonical one and its `__l0-N` twin).

    pip install sae-lens && python scripts/make_gemma_scope_links.py
"""

from pathlib import Path

import sae_lens
import yaml

table = yaml.safe_load((Path(sae_lens.__file__).parent / "pretrained_saes.yaml").read_text())
links = {}
for release in table.values():
    repo = release.get("repo_id", "")
    if not (repo.startswith("google/gemma-scope-") and repo.endswith("-res")):
        continue
    for sae in release["saes"]:
        np_id = sae.get("neuronpedia")
        if not np_id:
            continue
        key = (repo, sae["path"].strip("/"))
        if key not in links or "__" in links[key]:
            links[key] = np_id

out = Path(__file__).parent.parent / "www/src/gemma_scope_neuronpedia.tsv"
lines = [f"{repo}\t{path}\t{np_id}" for (repo, path), np_id in sorted(links.items())]
out.write_text("\n".join(lines) + "\n")
print(f"{len(lines)} SAEs → {out} (sae-lens {sae_lens.__version__})")
