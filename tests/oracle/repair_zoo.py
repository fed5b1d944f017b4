"""PTQ repair on the zoo networks that collapse, measured in ONNX Runtime
(the benchmark behind docs/repair.md; not a CI test: about half an hour).

For each network, `qcal quantize` writes the Q/DQ model in each
configuration, ONNX Runtime runs it and the float model (`qcal quantize
--method none`) on the held-out photos, and the table gives the worst
output's SQNR (signal and error summed over the photos, per output, lowest
output), with ORT's default graph optimizations and with them off (the
file's ONNX semantics, which ORT's QDQ rewrites can change), and the time
qcal took. The data is the zoo's (analysis/zoo.inc):
face networks on the face crops `qcal crops` makes (16 to calibrate, the
other 69 held out), whole-image networks on the photos of people (2 and 2),
BlazePose on them padded square (`qcal crops --kind body`, 2 and 2), the
hand landmark networks on the hand crops of the people and hands photos
(`qcal crops --kind hand`, 8 to calibrate, 11 held out). The held-out photos are
qcal's own split (every other photo until the calibration has its count,
the rest held out), which `--target-db` also measures on. The activation
calibrator is, per network, the best of max, entropy, mse and percentile
for plain W8A8 per-channel on those photos as ONNX Runtime measures it (the zoo's
rule; entropy alone leaves meet at 0.4 dB whatever the weights).
usage: repair_zoo.py QCAL SOURCE_ROOT [NETWORK ...]   (QCAL_REPAIR_ITERS: AdaRound steps)"""
import json
import re
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import onnx_zoo  # noqa: E402
import oracle  # noqa: E402

qcal, root = sys.argv[1], sys.argv[2]
NETS = sys.argv[3:] or ["facemesh", "mobilefacenet", "meet", "efficientpose", "faceres",
                        "blazepose-lite", "blazepose-full", "blazepose-heavy",
                        "handlandmark-full", "handlandmark-lite", "posenet", "handskeleton"]
models = subprocess.run([os.path.join(root, "scripts/fetch-models.sh")], check=True,
                        capture_output=True, text=True).stdout.strip()
cache = subprocess.run([os.path.join(root, "scripts/fetch-data.sh")], check=True,
                       capture_output=True, text=True).stdout.strip()
images, people = os.path.join(cache, "images"), os.path.join(cache, "people")
hand_photos = os.path.join(cache, "hands")
ZOO = dict(re.findall(r'QCAL_ZOO\("([^"]+)", "[^"]*", "([^"]+)"',
                      open(os.path.join(root, "analysis/zoo.inc")).read()))
peers = onnx_zoo.peers(root)
ITERS = os.environ.get("QCAL_REPAIR_ITERS", "1000")
CONFIGS = [
    ("per-tensor", ["--weights", "per-tensor"]),
    ("per-channel", []),
    ("per-tensor cle,bias", ["--weights", "per-tensor", "--repair", "cle,bias"]),
    ("per-channel cle,bias,adaround", ["--repair", "cle,bias,adaround", "--adaround-iters", ITERS]),
]


def ort_outputs(model, xs, prefix, level="all"):
    env = dict(os.environ, QCAL_PEERS=peers, QCAL_ORT_LEVEL=level)
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


print("| network | data | bits | " + " | ".join(c for c, _ in CONFIGS) + " | target 30 dB |")
print("|---|---|---|" + "---|" * (len(CONFIGS) + 1))
with tempfile.TemporaryDirectory() as tmp:
    crops, bodies = os.path.join(tmp, "crops"), os.path.join(tmp, "bodies")
    subprocess.run([qcal, "crops", "-o", crops], check=True, capture_output=True)
    subprocess.run([qcal, "crops", "--kind", "body", "-o", bodies], check=True,
                   capture_output=True)
    hands = os.path.join(tmp, "hands")
    for photos in (people, hand_photos):
        subprocess.run([qcal, "crops", "--kind", "hand", "--images", photos, "-o", hands],
                       check=True, capture_output=True)
    for net in NETS:
        kind = ZOO.get(net, "people")
        folder, ncal, data = ((crops, 16, "face crops") if kind == "face" else
                              (people, 2, "people photos") if kind == "people" else
                              (bodies, 2, "body inputs") if kind == "body" else
                              (hands, 8, "hand crops") if kind == "hand" else
                              (images, 8, "out of domain"))
        held = oracle.held_out(folder, ncal)
        src = os.path.join(models, net + ".json")
        f32 = os.path.join(tmp, "f32.onnx")
        subprocess.run([qcal, "quantize", src, "--method", "none", "-o", f32], check=True,
                       capture_output=True)
        xs = []
        for k, n in enumerate(held):
            x = os.path.join(tmp, f"x{k}.npy")
            r = subprocess.run([qcal, "infer", src, "--image", os.path.join(folder, n),
                                "--save-input", x, "-o", os.path.join(tmp, "f.npz")],
                               capture_output=True, text=True)
            if r.returncode == 0:
                xs.append(x)
        ref = ort_outputs(f32, xs, os.path.join(tmp, "r"))
        # the activation calibrator a user would pick: the best of the four for plain W8A8
        # per-channel on the held-out photos (the zoo's rule), here as ONNX Runtime measures it
        best, method = -1e9, "entropy"
        for m in ("max", "entropy", "mse", "percentile"):
            out = os.path.join(tmp, "m.onnx")
            r = subprocess.run([qcal, "quantize", src, "--images", folder, "--calib", str(ncal),
                                "--method", m, "-o", out], capture_output=True, text=True)
            if r.returncode == 0:
                db = worst_db(ref, ort_outputs(out, xs, os.path.join(tmp, "m")))
                if db > best:
                    best, method = db, m
        for bits in (8, 4):
            cells = []
            extra = [("target", ["--target-db", "30"])] if bits == 8 else []
            for label, args in CONFIGS + extra:
                out = os.path.join(tmp, "q.onnx")
                js = os.path.join(tmp, "q.json")
                t0 = time.time()
                r = subprocess.run([qcal, "quantize", src, "--images", folder, "--calib", str(ncal),
                                    "--method", method, "--weight-bits", str(bits), *args, "-o",
                                    out, "--json", js],
                                   capture_output=True, text=True)
                dt = time.time() - t0
                if r.returncode:
                    cells.append("error: " + r.stderr.strip()[-80:])
                    continue
                db = worst_db(ref, ort_outputs(out, xs, os.path.join(tmp, "q")))
                # the file's ONNX semantics: ORT's optimizations rewrite Q/DQ graphs (QDQ
                # propagation and fusion) and can change the numbers
                db0 = worst_db(ref, ort_outputs(out, xs, os.path.join(tmp, "q"), "disabled"))
                cell = f"{db:.1f} / {db0:.1f} ({dt:.0f} s)"
                if label == "target":
                    mp = json.load(open(js))["repair"]["mixed_precision"]
                    cell = (f"{db:.1f} / {db0:.1f}, {100 * mp['weight_fraction_int8']:.0f}% w / "
                            f"{100 * mp['mac_fraction_int8']:.0f}% MACs int8, "
                            f"{len(mp['kept_float'])} float ({dt:.0f} s)")
                cells.append(cell)
            if bits == 4:
                cells.append("")
            print(f"| {net} | {data}, {len(xs)} held, {method} | W{bits}A8 | " + " | ".join(cells)
                  + " |", flush=True)
