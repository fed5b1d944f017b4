"""PTQ repair on the zoo networks that collapse, measured in ONNX Runtime
(the benchmark behind docs/repair.md; not a CI test: about half an hour).

For each network, `qcal quantize` writes the Q/DQ model in each
configuration (calibrated on 8 photos), ONNX Runtime runs it and the float
model (`qcal quantize --method none`) on the 8 other photos, and the table
gives the worst output's SQNR (signal and error summed over the photos,
per output, lowest output) and the time qcal took.
usage: repair_zoo.py QCAL SOURCE_ROOT [NETWORK ...]   (QCAL_REPAIR_ITERS: AdaRound steps)"""
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import onnx_zoo  # noqa: E402

qcal, root = sys.argv[1], sys.argv[2]
NETS = sys.argv[3:] or ["facemesh", "mobilefacenet", "meet", "efficientpose", "faceres",
                        "blazepose-lite", "blazepose-full", "blazepose-heavy",
                        "handlandmark-full", "handlandmark-lite", "posenet", "handskeleton"]
models = subprocess.run([os.path.join(root, "scripts/fetch-models.sh")], check=True,
                        capture_output=True, text=True).stdout.strip()
images = os.path.join(subprocess.run([os.path.join(root, "scripts/fetch-data.sh")], check=True,
                                     capture_output=True, text=True).stdout.strip(), "images")
peers = onnx_zoo.peers(root)
ITERS = os.environ.get("QCAL_REPAIR_ITERS", "1000")
CONFIGS = [
    ("per-tensor", ["--weights", "per-tensor"]),
    ("per-channel", []),
    ("per-tensor cle,bias", ["--weights", "per-tensor", "--repair", "cle,bias"]),
    ("per-channel cle,bias,adaround", ["--repair", "cle,bias,adaround", "--adaround-iters", ITERS]),
]


def ort_outputs(model, xs, prefix):
    env = dict(os.environ, QCAL_PEERS=peers)
    r = subprocess.run(["node", os.path.join(root, "tests/oracle/ort_many.js"), model, prefix, *xs],
                       env=env, capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(r.stderr.strip())
    n = len(json.loads(r.stdout.strip().splitlines()[-1])["outputs"])
    return [[np.load(f"{prefix}{j}_{i}.npy").astype(np.float64) for i in range(n)]
            for j in range(len(xs))]


def worst_db(ref, got):
    dbs = []
    for i in range(len(ref[0])):
        sig = sum(float((r[i] ** 2).sum()) for r in ref)
        err = sum(float(((r[i] - g[i]) ** 2).sum()) for r, g in zip(ref, got))
        dbs.append(float("inf") if err == 0 else 10 * np.log10(sig / err))
    return min(dbs)


names = sorted(os.listdir(images))
held = names[1::2]
print("| network | bits | " + " | ".join(c for c, _ in CONFIGS) + " | target 30 dB |")
print("|---|---|" + "---|" * (len(CONFIGS) + 1))
with tempfile.TemporaryDirectory() as tmp:
    for net in NETS:
        src = os.path.join(models, net + ".json")
        f32 = os.path.join(tmp, "f32.onnx")
        subprocess.run([qcal, "quantize", src, "--method", "none", "-o", f32], check=True,
                       capture_output=True)
        xs = []
        for k, n in enumerate(held):
            x = os.path.join(tmp, f"x{k}.npy")
            r = subprocess.run([qcal, "infer", src, "--image", os.path.join(images, n),
                                "--save-input", x, "-o", os.path.join(tmp, "f.npz")],
                               capture_output=True, text=True)
            if r.returncode == 0:
                xs.append(x)
        ref = ort_outputs(f32, xs, os.path.join(tmp, "r"))
        for bits in (8, 4):
            cells = []
            extra = [("target", ["--target-db", "30"])] if bits == 8 else []
            for label, args in CONFIGS + extra:
                out = os.path.join(tmp, "q.onnx")
                js = os.path.join(tmp, "q.json")
                t0 = time.time()
                r = subprocess.run([qcal, "quantize", src, "--images", images, "--calib", "8",
                                    "--weight-bits", str(bits), *args, "-o", out, "--json", js],
                                   capture_output=True, text=True)
                dt = time.time() - t0
                if r.returncode:
                    cells.append("error: " + r.stderr.strip()[-80:])
                    continue
                db = worst_db(ref, ort_outputs(out, xs, os.path.join(tmp, "q")))
                cell = f"{db:.1f} ({dt:.0f} s)"
                if label == "target":
                    mp = json.load(open(js))["repair"]["mixed_precision"]
                    cell = (f"{db:.1f}, {100 * mp['weight_fraction_int8']:.0f}% w / "
                            f"{100 * mp['mac_fraction_int8']:.0f}% MACs int8, "
                            f"{len(mp['kept_float'])} float ({dt:.0f} s)")
                cells.append(cell)
            if bits == 4:
                cells.append("")
            print(f"| {net} | W{bits}A8 | " + " | ".join(cells) + " |", flush=True)
