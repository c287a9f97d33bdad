#!/usr/bin/env python3
"""Makes the lab's embedded default model, www/embedded/gpt2-tiny/: the gpt2-tiny test fixture with a
256-position context (its 64 positions cannot hold the built-in A/B items, ~66 tokens), the new position
embeddings drawn as GPT-2 initialises them (normal, std 0.02, seeded), stored in float16 to halve the download.
Its tokenizer and SAE are the fixtures' own (www/index.html copies them).

Run once (needs PyPI torch + transformers + safetensors); the output is committed:
    python3 scripts/make_embedded_model.py
"""
import json
import os

import torch
from safetensors.torch import load_file, save_file
from transformers import GPT2LMHeadModel

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "..", "tests", "fixtures", "models", "gpt2-tiny")
OUT = os.path.join(HERE, "..", "www", "embedded", "gpt2-tiny")
POSITIONS = 256


def main():
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(FIXTURE, "config.json")) as f:
        config = json.load(f)
    weights = load_file(os.path.join(FIXTURE, "model.safetensors"))
    wpe = weights["wpe.weight"]
    extra = torch.randn(POSITIONS - wpe.shape[0], wpe.shape[1], generator=torch.Generator().manual_seed(0)) * 0.02
    weights["wpe.weight"] = torch.cat([wpe, extra.to(wpe.dtype)])
    config["n_positions"] = POSITIONS
    config["torch_dtype"] = "float16"
    with open(os.path.join(OUT, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    save_file({k: v.to(torch.float16).contiguous() for k, v in weights.items()},
              os.path.join(OUT, "model.safetensors"), metadata={"format": "pt"})
    # transformers must read it as a GPT-2 with the longer context.
    model = GPT2LMHeadModel.from_pretrained(OUT)
    assert model.config.n_positions == POSITIONS
    ids = torch.arange(POSITIONS).unsqueeze(0) % 50257
    assert torch.isfinite(model(ids).logits).all()
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
