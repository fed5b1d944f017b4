"""`qcal crops` (the zoo's in-domain face crops) against the library's
pipeline computed with TensorFlow.js's own ops (crops_tfjs.js: BlazeFace,
its anchors, nonMaxSuppression, cropAndResize, as npm @vladmandic/human
3.0.7's blazeface.ts and facemeshutil.ts do it):

- on every photo of the people folder (the colour photos and the 200 LFW
  images of scikit-image's lfw_subset.npy): the same photos have a face, with
  the same score (1e-3) and the same square box (pixels, +-1 for rounding);
- each crop qcal wrote equals TensorFlow.js's cropAndResize of that box
  within one grey level (qcal stores 8-bit PNG);
- none of the 100 LFW non-faces is taken for a face;
- --kind eye (iris's input): two per face, the eye boxes within 1 pixel of
  TensorFlow.js running FaceMesh on the same face, and where the box is
  the same the crop within 1.5 grey levels (the face is 8-bit in neither
  pipeline; the crop is 8-bit PNG);
- --kind body (BlazePose's input without its detector): one per colour
  photo, equal to TensorFlow.js's tf.pad + resizeBilinear within one grey
  level, the padded square as its box;
- bad input: no photos, a malformed .npy stack, no -o: exit 2, one line.
usage: check_crops.py QCAL SOURCE_ROOT"""
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper

sys.path.insert(0, os.path.dirname(__file__))
import oracle  # noqa: E402
from oracle import run  # noqa: E402
import onnx_zoo  # noqa: E402

qcal, root = sys.argv[1], sys.argv[2]
models = subprocess.run([os.path.join(root, "scripts/fetch-models.sh")], check=True,
                        capture_output=True, text=True).stdout.strip()
cache = subprocess.run([os.path.join(root, "scripts/fetch-data.sh")], check=True,
                       capture_output=True, text=True).stdout.strip()
people = os.path.join(cache, "people")
peers = onnx_zoo.peers(root)
check = oracle.Checks()






def png(path):
    """A crop qcal wrote, [H, W, 3] float32 (PNG is lossless: Pillow reads what qcal wrote)."""
    from PIL import Image
    return np.asarray(Image.open(path).convert("RGB"), np.float32)


def image_size(path):
    """(height, width) from a PNG or JPEG header."""
    b = open(path, "rb").read()
    if b[:8] == b"\x89PNG\r\n\x1a\n":
        w, h = struct.unpack(">II", b[16:24])
        return h, w
    i = 2
    while i < len(b):
        marker, size = b[i + 1], struct.unpack(">H", b[i + 2:i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            h, w = struct.unpack(">HH", b[i + 5:i + 9])
            return h, w
        i += 2 + size
    raise ValueError(path)


with tempfile.TemporaryDirectory() as tmp:
    crops, js = os.path.join(tmp, "crops"), os.path.join(tmp, "crops.json")
    r = run(qcal, "crops", "--models", models, "--images", people, "-o", crops, "--json", js)
    check(r.returncode == 0, f"qcal crops: {r.stdout.strip()} {r.stderr.strip()[-200:]}")
    got = {c["photo"]: c for c in json.load(open(js))} if r.returncode == 0 else {}
    # every photo as [H, W, 3] pixels: colour photos decoded by qcal through
    # an identity model at their own size, LFW from its array (as qcal rounds it)
    ident = os.path.join(tmp, "identity.onnx")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "h", "w", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "h", "w", 3])
    onnx.save(helper.make_model(helper.make_graph([helper.make_node("Identity", ["x"], ["y"])],
                                                  "id", [x], [y])), ident)
    photos, keys = [], []
    for n in sorted(os.listdir(people)):
        p = os.path.join(people, n)
        if n.endswith(".npy"):
            a = np.load(p)
            for k in range(a.shape[0]):
                px = np.rint(a[k].astype(np.float32) * 255).astype(np.float32)
                photos.append(np.repeat(px[:, :, None], 3, axis=2))
                keys.append(f"{p}[{k}]")
            continue
        h, w = image_size(p)
        o = os.path.join(tmp, "px.npy")
        rr = run(qcal, "infer", ident, "--image", p, "--input-size", f"{h},{w}", "--layout", "nhwc",
                 "--channels", "3", "--scale", "1", "--offset", "0", "--save-input", o, "-o",
                 os.path.join(tmp, "o.npz"))
        assert rr.returncode == 0, rr.stderr
        photos.append(np.load(o)[0])
        keys.append(p)
    files = []
    for k, a in enumerate(photos):
        f = os.path.join(tmp, f"p{k}.npy")
        np.save(f, np.ascontiguousarray(a, np.float32))
        files.append(f)
    out = os.path.join(tmp, "tfjs")
    os.makedirs(out)
    rr = subprocess.run(["node", os.path.join(root, "tests/oracle/crops_tfjs.js"),
                         os.path.join(models, "blazeface.json"), out, *files], capture_output=True,
                        text=True, env=dict(os.environ, QCAL_PEERS=peers))
    assert rr.returncode == 0, rr.stderr
    want = json.loads(rr.stdout.strip().splitlines()[-1])
    found = {keys[k] for k, v in enumerate(want) if v}
    check(found == set(got), f"faces found: qcal {len(got)}, TensorFlow.js {len(found)} of "
          f"{len(keys)} photos (differ: {sorted(found ^ set(got))[:5]})")
    worst_s = worst_b = worst_px = 0.0
    for k, v in enumerate(want):
        if not v or keys[k] not in got:
            continue
        g = got[keys[k]]
        worst_s = max(worst_s, abs(g["score"] - v["score"]))
        worst_b = max(worst_b, max(abs(a - b) for a, b in zip(g["box"], v["box"])))
        c = png(os.path.join(crops, g["file"]))
        t = np.load(os.path.join(out, f"{k}.npy"))
        worst_px = max(worst_px, float(np.abs(c - t).max()))
    check(worst_s < 1e-3 and worst_b <= 1 and worst_px <= 1.0,
          f"scores within {worst_s:.1e}, boxes within {worst_b:g} px, crop pixels within "
          f"{worst_px:.2f} grey levels of TensorFlow.js")
    neg = [k for k in got if "lfw_subset.npy[" in k and int(k.split("[")[1][:-1]) >= 100]
    faces = [k for k in got if "lfw_subset.npy[" in k]
    check(not neg and len(faces) >= 50,
          f"LFW: {len(faces)} of 100 faces found, {len(neg)} of 100 non-faces taken for faces")

    # eyes: FaceMesh on each face, iris.ts getEyeBox
    eyes_dir, ejs = os.path.join(tmp, "eyes"), os.path.join(tmp, "eyes.json")
    r = run(qcal, "crops", "--kind", "eye", "--images", people, "-o", eyes_dir, "--json", ejs)
    egot = {}
    for e in (json.load(open(ejs)) if r.returncode == 0 else []):
        egot.setdefault(e["photo"], []).append(e)
    eout = os.path.join(tmp, "tfjs_eye")
    os.makedirs(eout)
    face_k = [k for k, v in enumerate(want) if v]
    rr = subprocess.run(["node", os.path.join(root, "tests/oracle/crops_tfjs.js"), "--eye",
                         os.path.join(models, "facemesh.json"), os.path.join(models, "blazeface.json"),
                         eout, *[files[k] for k in face_k]], capture_output=True, text=True,
                        env=dict(os.environ, QCAL_PEERS=peers))
    assert rr.returncode == 0, rr.stderr
    ewant = json.loads(rr.stdout.strip().splitlines()[-1])
    worst_box, worst_px, same, n_eyes = 0, 0.0, 0, 0
    for j, k in enumerate(face_k):
        g = sorted(egot.get(keys[k], []), key=lambda e: e["file"])  # ..._eye0l, ..._eye0r
        if len(g) != 2 or not ewant[j]:
            worst_box = 99
            continue
        fb = got[keys[k]]["box"]
        f = (fb[2] - fb[0]) / 192
        for e, side in ((g[1], 0), (g[0], 1)):  # r then l, as the oracle lists them
            tb = ewant[j]["eyes"][side]
            qb = [round((e["box"][i] - fb[i % 2]) / f) for i in range(4)]
            d = max(abs(a - b) for a, b in zip(qb, tb))
            worst_box = max(worst_box, d)
            n_eyes += 1
            if d:
                continue
            t = np.load(os.path.join(eout, f"{j}{'l' if side else 'r'}.npy"))
            worst_px = max(worst_px, float(np.abs(png(os.path.join(eyes_dir, e["file"])) - t).max()))
            same += 1
    check(r.returncode == 0 and n_eyes == 2 * len(face_k) and worst_box <= 1 and
          same >= 0.9 * n_eyes and worst_px <= 1.5,
          f"eye: {n_eyes} eye crops of {len(face_k)} faces, boxes within {worst_box} px of "
          f"TensorFlow.js's FaceMesh, {same} identical boxes with crops within {worst_px:.2f} "
          f"grey levels")
    # body: every colour photo padded square and resized, as blazepose.ts prepareImage
    bodies, bjs = os.path.join(tmp, "bodies"), os.path.join(tmp, "bodies.json")
    r = run(qcal, "crops", "--kind", "body", "--images", people, "-o", bodies, "--json", bjs)
    bgot = {c["photo"]: c for c in json.load(open(bjs))} if r.returncode == 0 else {}
    colour = [k for k, key in enumerate(keys) if ".npy[" not in key]
    bout = os.path.join(tmp, "tfjs_body")
    os.makedirs(bout)
    rr = subprocess.run(["node", os.path.join(root, "tests/oracle/crops_tfjs.js"), "--body", bout,
                         *[files[k] for k in colour]], capture_output=True, text=True,
                        env=dict(os.environ, QCAL_PEERS=peers))
    assert rr.returncode == 0, rr.stderr
    worst_px, boxes_ok = 0.0, True
    for j, k in enumerate(colour):
        g = bgot.get(keys[k])
        if not g:
            boxes_ok = False
            continue
        h, w = photos[k].shape[:2]
        ph, pw = (w - h) // 2 if w > h else 0, (h - w) // 2 if h > w else 0
        boxes_ok &= g["box"] == [-pw, -ph, w + pw, h + ph]
        worst_px = max(worst_px, float(np.abs(png(os.path.join(bodies, g["file"])) - np.load(
            os.path.join(bout, f"{j}.npy"))).max()))
    check(r.returncode == 0 and len(bgot) == len(colour) and boxes_ok and worst_px <= 1.0,
          f"body: {len(bgot)} of {len(colour)} colour photos, padded square as TensorFlow.js's "
          f"tf.pad + resizeBilinear within {worst_px:.2f} grey levels, boxes "
          f"{'equal' if boxes_ok else 'differ'}")
    bad = os.path.join(tmp, "bad")
    os.makedirs(bad)
    np.save(os.path.join(bad, "s.npy"), np.zeros((2, 5), np.float32))
    empty = os.path.join(tmp, "empty")
    os.makedirs(empty)
    for args, needle in [(["--images", bad, "-o", os.path.join(tmp, "b1")], "stack of photos"),
                         (["--images", empty, "-o", os.path.join(tmp, "b2")], "no image file"),
                         (["--images", people], "-o DIR")]:
        rr = run(qcal, "crops", "--models", models, *args)
        check(rr.returncode == 2 and needle in rr.stderr and rr.stderr.count("\n") == 1,
              f"bad input {args[:2]}: exit {rr.returncode}: {rr.stderr.strip()}")
check.finish()
