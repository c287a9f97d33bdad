#!/usr/bin/env python3
"""GGUF control-vector fixtures for steerlab's interop tests, made and checked with the `gguf` package (PyPI; the
reader and writer llama.cpp ships):
    python3 scripts/make_gguf_fixtures.py [path/to/steerlab]

tests/fixtures/gguf/ holds
  vector.safetensors      a steering vector (`steering_vector` F32 [32], hook blocks.3.hook_resid_pre, model gpt2-tiny)
  repeng.gguf             a control vector as repeng's export_gguf writes one (gguf.GGUFWriter, architecture
                          "controlvector", model_hint, layer_count, F32 direction.{1,2,4}) from seeded directions,
                          which are also in directions.safetensors (`direction.{k}`)
  steerlab.gguf           what `steerlab export --vector vector.safetensors` writes (made with the steerlab binary
                          given, or target/debug/steerlab), read back here with gguf.GGUFReader: its architecture,
                          model hint, layer count and direction.2 (blocks.3.hook_resid_pre is block 2's output) must
                          equal the vector, or this script fails
"""
import os
import subprocess
import sys

import gguf
import numpy as np
import torch
from safetensors.torch import save_file, load_file

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "gguf")
LAYERS = [1, 2, 4]
D = 32


def main():
    os.makedirs(OUT, exist_ok=True)
    g = torch.Generator().manual_seed(7)
    directions = {k: torch.randn(D, generator=g) for k in LAYERS}
    save_file({f"direction.{k}": v.contiguous() for k, v in directions.items()}, os.path.join(OUT, "directions.safetensors"))
    arch = "controlvector"
    writer = gguf.GGUFWriter(os.path.join(OUT, "repeng.gguf"), arch)
    writer.add_string(f"{arch}.model_hint", "gpt2")
    writer.add_uint32(f"{arch}.layer_count", len(directions))
    for k, v in directions.items():
        writer.add_tensor(f"direction.{k}", v.numpy().astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    vector = torch.randn(D, generator=g)
    save_file({"steering_vector": vector.contiguous()}, os.path.join(OUT, "vector.safetensors"),
              metadata={"hook": "blocks.3.hook_resid_pre", "model": "gpt2-tiny", "method": "caa"})
    steerlab = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "target", "debug", "steerlab")
    ours = os.path.join(OUT, "steerlab.gguf")
    subprocess.run([steerlab, "export", "--vector", os.path.join(OUT, "vector.safetensors"), "--format", "gguf",
                    "--out", ours], check=True)
    r = gguf.GGUFReader(ours)
    field = lambda key: r.fields[key]
    arch_field = field("general.architecture")
    assert bytes(arch_field.parts[arch_field.data[0]]).decode() == "controlvector"
    hint = field("controlvector.model_hint")
    assert bytes(hint.parts[hint.data[0]]).decode() == "gpt2-tiny"
    count = field("controlvector.layer_count")
    assert int(count.parts[count.data[0]][0]) == 1
    assert [t.name for t in r.tensors] == ["direction.2"], [t.name for t in r.tensors]
    got = np.asarray(r.tensors[0].data, dtype=np.float32)
    assert r.tensors[0].tensor_type == gguf.GGMLQuantizationType.F32 and got.shape == (D,)
    assert np.array_equal(got, vector.numpy()), "steerlab's direction.2 is not the vector"
    print("repeng.gguf written; steerlab.gguf read back by gguf.GGUFReader with the right names and values")


if __name__ == "__main__":
    main()
