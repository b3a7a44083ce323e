#!/usr/bin/env python3
"""snasnet_export.py: the PyTorch side of NeuroNAS's SNASNet interop (docs/interop.md).

Optional: needs PyTorch (Debian: python3-torch) and checkouts of SNASNet and of SpikingJelly
(a version that still has spikingjelly/clock_driven), named by SNASNET_DIR and SPIKINGJELLY_DIR.
Nothing in the test suite runs it.

  snasnet_export.py check FILE [--cell M] [--dataset D] [--channels C] [--celltype T] [--compare REF]
      Builds SNASNet's model and loads FILE (written by NeuroNAS with
      net:save(FILE, { names = "snasnet" })) with load_state_dict(strict=True). With --compare,
      also checks every tensor of FILE against the safetensors file REF, value for value.
  snasnet_export.py export FILE [--cell M] [--dataset D] [--channels C] [--celltype T] [--seed S]
      Builds SNASNet's model with freshly initialised weights (torch.manual_seed(S)) and writes
      its state dict to FILE, for net:load(FILE, { names = "snasnet" }) in NeuroNAS.

The cell M is SNASNet's 4x4 text ("0303 0030 2002 0200"); --channels C gives C channels in
cell A and 2C in cell B (SNASNet itself fixes 128 x its preset's ratio). The NeuroNAS net must be
built with the same preset, cell and channels, e.g.
  nn.net{ preset = "cifar100", cellA = "0303 0030 2002 0200", channels = 16 }
Exit status: 0 success, 1 mismatch, 2 usage or setup error.
"""
import argparse
import json
import os
import struct
import sys
import types

# safetensors dtype <-> numpy dtype (little-endian)
DTYPES = {"F64": "<f8", "F32": "<f4", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
          "U8": "u1"}


def read_safetensors(path):
    """Returns ({name: numpy array}, metadata) of a safetensors file."""
    import numpy as np
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    out = {}
    for name, h in header.items():
        if h["dtype"] not in DTYPES:
            raise SystemExit(f"{path}: tensor '{name}' has dtype {h['dtype']}, not supported here")
        a, b = h["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype=DTYPES[h["dtype"]]).reshape(h["shape"])
    return out, meta


def write_safetensors(path, tensors, metadata=None):
    """Writes {name: torch tensor} with each tensor's own dtype (float32, int64, ...)."""
    kinds = {("f", 8): "F64", ("f", 4): "F32", ("i", 8): "I64", ("i", 4): "I32", ("i", 2): "I16",
             ("i", 1): "I8", ("u", 1): "U8"}
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        a = tensors[name].detach().cpu().contiguous().numpy()
        key = (a.dtype.kind, a.dtype.itemsize)
        if key not in kinds:
            raise SystemExit(f"tensor '{name}': dtype {a.dtype} has no safetensors name here")
        a = a.astype(a.dtype.newbyteorder("<"))
        raw = a.tobytes()
        header[name] = {"dtype": kinds[key], "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    header["__metadata__"] = dict(metadata or {}, format="pt")
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def snasnet_module():
    """Imports SNASNet's model_snn from SNASNET_DIR with SpikingJelly from SPIKINGJELLY_DIR."""
    snas, sj = os.environ.get("SNASNET_DIR"), os.environ.get("SPIKINGJELLY_DIR")
    if not snas or not sj:
        raise SystemExit("set SNASNET_DIR (a SNASNet checkout) and SPIKINGJELLY_DIR (SpikingJelly with clock_driven)")
    sys.path[:0] = [sj, snas]
    # model_snn imports matplotlib without using it: an empty stand-in when it is missing
    try:
        import matplotlib.pyplot  # noqa: F401
    except ImportError:
        mpl = types.ModuleType("matplotlib")
        mpl.pyplot = types.ModuleType("matplotlib.pyplot")
        sys.modules.update({"matplotlib": mpl, "matplotlib.pyplot": mpl.pyplot})
    # spike_op compiles a CUDA extension at import; SNASNet's model does not use it
    sys.modules.setdefault("spikingjelly.clock_driven.spike_op", types.ModuleType("spike_op"))
    import contextlib
    with contextlib.redirect_stdout(sys.stderr):
        import model_snn
    return model_snn


class Ratio:
    """k * Ratio(c) == k * c / 128: replaces SNASNet's integer channel ratio (cell A has
    128 * ratio channels), so that cell A gets c channels and cell B 2c."""

    def __init__(self, c):
        self.c = c

    def __rmul__(self, k):
        if (k * self.c) % 128:
            raise SystemExit(f"--channels {self.c}: {k} * {self.c} / 128 is not an integer")
        return k * self.c // 128

    __mul__ = __rmul__


def build(args):
    import torch
    model_snn = snasnet_module()
    cls = model_snn.SNASNet
    if args.channels:
        c = args.channels

        class Scaled(cls):
            def __setattr__(self, name, value):
                super().__setattr__(name, Ratio(c) if name == "channel_ratio" else value)
        cls = Scaled
    rows = args.cell.split()
    if len(rows) != 4 or any(len(r) != 4 or not r.isdigit() for r in rows):
        raise SystemExit(f"--cell '{args.cell}': 4 rows of 4 digits expected, e.g. '0303 0030 2002 0200'")
    con_mat = torch.tensor([[int(d) for d in r] for r in rows])
    ns = argparse.Namespace(dataset=args.dataset, celltype=args.celltype, timestep=5, second_avgpooling=2,
                            tau=4.0 / 3.0, threshold=1.0)
    return cls(ns, con_mat)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("command", choices=["check", "export"])
    p.add_argument("file")
    p.add_argument("--cell", default="0303 0030 2002 0200")
    p.add_argument("--dataset", default="cifar100", choices=["cifar10", "cifar100", "tinyimagenet"])
    p.add_argument("--channels", type=int, default=0, help="cell A width (default: SNASNet's)")
    p.add_argument("--celltype", default="backward", choices=["forward", "backward"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--compare", help="check: a reference safetensors file to compare values with")
    args = p.parse_args()
    import torch
    if args.command == "export":
        torch.manual_seed(args.seed)
        net = build(args)
        write_safetensors(args.file, net.state_dict(), {"cell": args.cell})
        print(f"{args.file}: {len(net.state_dict())} tensors of SNASNet's state dict")
        return 0
    tensors, meta = read_safetensors(args.file)
    net = build(args)
    state = {k: torch.from_numpy(v.copy()) for k, v in tensors.items()}
    missing, unexpected = net.load_state_dict(state, strict=True)  # raises on any mismatch
    want = net.state_dict()
    bad = [k for k, v in state.items() if v.dtype != want[k].dtype]
    print(f"{args.file}: load_state_dict(strict=True) took all {len(state)} tensors"
          f" (format {meta.get('format')}); dtypes differing from the model's: {bad or 'none'}")
    status = 1 if bad else 0
    if args.compare:
        ref, _ = read_safetensors(args.compare)
        diff = sorted(set(ref) ^ set(tensors))
        diff += [k for k in sorted(set(ref) & set(tensors))
                 if ref[k].shape != tensors[k].shape or (ref[k].astype("f8") != tensors[k].astype("f8")).any()]
        print(f"compared with {args.compare}: {len(ref)} tensors, {len(diff)} differ{': ' + ', '.join(diff[:5]) if diff else ''}")
        status = status or (1 if diff else 0)
    return status


if __name__ == "__main__":
    sys.exit(main())
