#!/usr/bin/env python3
"""Converts an RWKV-7 PyTorch checkpoint (.pth, e.g. from `aviary synth`) to
rwkv.cpp's file format, without PyTorch (numpy only), and optionally quantizes
it with rwkv.cpp's own quantizer, so that bench/compare.py can run rwkv.cpp on
the same checkpoint as Aviary and llama.cpp.

  bench/peers/pth_to_rwkvcpp.py X.pth rc-X-f16.bin
  bench/peers/pth_to_rwkvcpp.py X.pth rc-X-q4_0.bin --quantize Q4_0 --librwkv $RWKVCPP/build/librwkv.so

The file holds what rwkv.cpp's own converter (python/convert_pytorch_to_ggml.py,
FP16) writes for RWKV-7: the header ('ggmf', version 101, n_vocab, n_embed,
n_layer, FP16), then each tensor as (n_dims, name length, 1 if fp16), its
shape innermost first, its name and its data; the token-shift vectors x_r ..
x_g of a layer concatenated into one `x_rwkvag`; the LoRA factors transposed;
vectors and the small per-channel tensors kept in fp32, the rest in fp16.
Layer 0's v0/v1/v2, which rwkv.cpp never reads (its loader refuses unknown
data), are left out. Not part of the Aviary build.
"""
import argparse
import collections
import ctypes
import os
import pickle
import struct
import sys
import tempfile
import zipfile

import numpy as np

STORAGES = {"BFloat16Storage": "bf16", "HalfStorage": np.float16, "FloatStorage": np.float32}
LORA = (".w1", ".w2", ".a1", ".a2", ".v1", ".v2", ".g1", ".g2")
KEEP_FP32 = (".time_", ".k_k", ".k_a", ".r_k", ".x_rwkvag", ".x_k", ".w0", ".a0", ".v0")


def load_pth(path):
    """The checkpoint's tensors as float32 numpy arrays, by name."""
    try:
        z = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as e:
        sys.exit(f"pth_to_rwkvcpp: {path} is not a readable PyTorch .pth (zip) checkpoint: {e}")
    root = z.namelist()[0].split("/")[0]

    def storage(key, kind):
        raw = z.read(f"{root}/data/{key}")
        if kind == "bf16":  # bf16 is the top half of an fp32
            return (np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
        return np.frombuffer(raw, dtype=kind).astype(np.float32)

    def rebuild(data, offset, size, stride, *_):
        if not size:
            return data[offset:offset + 1].reshape(())
        return np.lib.stride_tricks.as_strided(data[offset:], shape=size, strides=[s * 4 for s in stride]).copy()

    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if name == "_rebuild_tensor_v2":
                return rebuild
            if name in STORAGES:
                return name
            if (module, name) == ("collections", "OrderedDict"):
                return collections.OrderedDict
            raise pickle.UnpicklingError(f"{path}: unexpected {module}.{name} in the checkpoint")

        def persistent_load(self, pid):
            _, kind, key, _, _ = pid
            return storage(key, STORAGES[kind])

    return Unpickler(z.open(f"{root}/data.pkl")).load()


def rwkvcpp_tensors(sd):
    """(name, array) in rwkv.cpp's layout, in the checkpoint's order."""
    if "blocks.0.att.k_k" not in sd:
        sys.exit("pth_to_rwkvcpp: not an RWKV-7 checkpoint (no blocks.0.att.k_k)")
    out = {}
    for name, t in sd.items():
        if name in ("blocks.0.att.v0", "blocks.0.att.v1", "blocks.0.att.v2"):
            continue
        if "att.x_" in name:
            fused = f"blocks.{name.split('.')[1]}.att.x_rwkvag"
            out[fused] = np.concatenate([out[fused], t]) if fused in out else t
            continue
        if ".time_" in name:
            t = t.squeeze()
        if any(s in name for s in LORA):
            t = t.T  # made contiguous when written
        out[name] = t
    return out


def write(sd, path):
    n_layer = 0
    while f"blocks.{n_layer}.ln1.weight" in sd:
        n_layer += 1
    n_vocab, n_embed = sd["emb.weight"].shape
    with open(path, "wb") as f:
        f.write(struct.pack("=iiiiii", 0x67676D66, 101, n_vocab, n_embed, n_layer, 1))
        for name, t in rwkvcpp_tensors(sd).items():
            half = t.ndim > 1 and not any(s in name for s in KEEP_FP32)
            t = np.ascontiguousarray(t, dtype=np.float16 if half else np.float32)
            encoded = name.encode()
            f.write(struct.pack("=iii", t.ndim, len(encoded), 1 if half else 0))
            f.write(struct.pack(f"={t.ndim}i", *reversed(t.shape)))
            f.write(encoded)
            t.tofile(f)
    return n_layer, n_embed


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pth")
    ap.add_argument("out")
    ap.add_argument("--quantize", metavar="TYPE", help="rwkv.cpp format name, e.g. Q8_0, Q4_0")
    ap.add_argument("--librwkv", help="rwkv.cpp's shared library (for --quantize)")
    args = ap.parse_args()
    sd = load_pth(args.pth)
    if not args.quantize:
        n_layer, n_embed = write(sd, args.out)
        print(f"{args.out}: {n_layer} layers of {n_embed}, fp16")
        return
    if not args.librwkv:
        sys.exit("pth_to_rwkvcpp: --quantize needs --librwkv PATH")
    lib = ctypes.CDLL(args.librwkv)
    lib.rwkv_quantize_model_file.argtypes = [ctypes.c_char_p] * 3
    lib.rwkv_quantize_model_file.restype = ctypes.c_bool
    with tempfile.TemporaryDirectory() as tmp:
        f16 = os.path.join(tmp, "f16.bin")
        write(sd, f16)
        if not lib.rwkv_quantize_model_file(f16.encode(), args.out.encode(), args.quantize.encode()):
            sys.exit(f"pth_to_rwkvcpp: rwkv.cpp could not quantize to {args.quantize}")
    print(f"{args.out}: {args.quantize}")


if __name__ == "__main__":
    main()
