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
- --kind hand (handskeleton's input: palm detections, the photo turned
  upright about each palm): on the colour photos of people and the hands
  folder, the same palms per photo as TensorFlow.js (handdetect, its
  anchors, nonMaxSuppression, rotateWithOffset, cropAndResize), scores
  within 1e-3, angles within 1e-3 rad, boxes within 1 pixel, and 99% of
  each crop's values within one grey level (rotateWithOffset takes the
  nearest pixel: a coordinate at a half moves a whole pixel);
- --kind body (BlazePose's input without its detector): one per colour
  photo, equal to TensorFlow.js's tf.pad + resizeBilinear within one grey
  level, the padded square as its box;
- bad input: no photos, a malformed .npy stack, no -o, BlazeFace given as
  the hand detector: exit 2, one line, no crop left behind.
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


def load_photos(folder, tmp, ident):
    """Every photo of folder as [H, W, 3] pixels: image files decoded by qcal
    through an identity model at their own size, .npy stacks (LFW) from
    their arrays (as qcal rounds them); (pixels, keys as qcal names the
    photos, .npy files of the pixels for TensorFlow.js)."""
    photos, keys = [], []
    for n in sorted(os.listdir(folder)):
        p = os.path.join(folder, n)
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
        f = os.path.join(tmp, f"{os.path.basename(folder)}{k}.npy")
        np.save(f, np.ascontiguousarray(a, np.float32))
        files.append(f)
    return photos, keys, files


def hand_checks(tmp, folders, ident):
    """--kind hand on each folder against crops_tfjs.js --hand."""
    got, photos, keys, files = {}, [], [], []
    out_q = os.path.join(tmp, "hands")
    for folder in folders:
        js = os.path.join(tmp, "hands.json")
        r = run(qcal, "crops", "--kind", "hand", "--images", folder, "-o", out_q, "--json", js)
        check(r.returncode == 0, f"qcal crops --kind hand {folder}: {r.stderr.strip()[-200:]}")
        for e in (json.load(open(js)) if r.returncode == 0 else []):
            got.setdefault(e["photo"], []).append(e)
        p, k, f = load_photos(folder, tmp, ident)
        colour = [i for i, key in enumerate(k) if ".npy[" not in key]
        photos += [p[i] for i in colour]
        keys += [k[i] for i in colour]
        files += [f[i] for i in colour]
    out_t = os.path.join(tmp, "tfjs_hand")
    os.makedirs(out_t)
    rr = subprocess.run(["node", os.path.join(root, "tests/oracle/crops_tfjs.js"), "--hand",
                         os.path.join(models, "handdetect.json"), out_t, *files],
                        capture_output=True, text=True, env=dict(os.environ, QCAL_PEERS=peers))
    assert rr.returncode == 0, rr.stderr
    want = json.loads(rr.stdout.strip().splitlines()[-1])
    same, n = True, 0
    ws = wa = wb = 0.0
    worst_frac, worst_px = 1.0, 0.0
    for k, found in enumerate(want):
        g = sorted(got.get(keys[k], []), key=lambda e: e["file"])  # hand0, hand1...: NMS order
        if len(g) != len(found):
            same = False
            continue
        for j, (q, t) in enumerate(zip(g, found)):
            n += 1
            ws = max(ws, abs(q["score"] - t["score"]))
            wa = max(wa, abs(q["angle"] - t["angle"]))
            wb = max(wb, max(abs(a - b) for a, b in zip(q["box"], t["box"])))
            d = np.abs(png(os.path.join(out_q, q["file"])) - np.load(os.path.join(out_t, f"{k}_{j}.npy")))
            worst_frac = min(worst_frac, float((d <= 1.0).mean()))
            worst_px = max(worst_px, float(np.median(d)))
    check(same and n >= 10 and ws < 1e-3 and wa < 1e-3 and wb <= 1 and worst_frac >= 0.99,
          f"hand: {n} palms in {len(keys)} photos ({'the same' if same else 'NOT the same'} per "
          f"photo as TensorFlow.js), scores within {ws:.1e}, angles within {wa:.1e} rad, boxes "
          f"within {wb:.2g} px, crops: at least {100 * worst_frac:.2f}% of values within one grey "
          f"level (median difference at most {worst_px:g})")


with tempfile.TemporaryDirectory() as tmp:
    crops, js = os.path.join(tmp, "crops"), os.path.join(tmp, "crops.json")
    r = run(qcal, "crops", "--models", models, "--images", people, "-o", crops, "--json", js)
    check(r.returncode == 0, f"qcal crops: {r.stdout.strip()} {r.stderr.strip()[-200:]}")
    got = {c["photo"]: c for c in json.load(open(js))} if r.returncode == 0 else {}
    ident = os.path.join(tmp, "identity.onnx")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "h", "w", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "h", "w", 3])
    onnx.save(helper.make_model(helper.make_graph([helper.make_node("Identity", ["x"], ["y"])],
                                                  "id", [x], [y])), ident)
    arrays = os.path.join(tmp, "arrays")
    os.makedirs(arrays)
    photos, keys, files = load_photos(people, arrays, ident)
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
    if os.environ.get("QCAL_ORACLE_QUICK"):  # the sanitizer run: check_repair crops hands too
        print("skip hand crops against TensorFlow.js (QCAL_ORACLE_QUICK)")
    else:
        hand_checks(tmp, [people, os.path.join(cache, "hands")], ident)
    bad = os.path.join(tmp, "bad")
    os.makedirs(bad)
    np.save(os.path.join(bad, "s.npy"), np.zeros((2, 5), np.float32))
    empty = os.path.join(tmp, "empty")
    os.makedirs(empty)
    fake = os.path.join(tmp, "fake_models")  # BlazeFace where the hand detector should be
    os.makedirs(fake)
    os.symlink(os.path.join(models, "blazeface.json"), os.path.join(fake, "handdetect.json"))
    os.symlink(os.path.join(models, "blazeface.bin"), os.path.join(fake, "blazeface.bin"))
    rr = run(qcal, "crops", "--kind", "hand", "--models", fake, "--images", people, "-o",
             os.path.join(tmp, "b0"))
    check(rr.returncode == 2 and "not a hand detector" in rr.stderr and
          rr.stderr.count("\n") == 1 and not os.listdir(os.path.join(tmp, "b0")),
          f"bad input: BlazeFace as the hand detector: exit {rr.returncode}: {rr.stderr.strip()}")
    for args, needle in [(["--images", bad, "-o", os.path.join(tmp, "b1")], "stack of photos"),
                         (["--images", empty, "-o", os.path.join(tmp, "b2")], "no image file"),
                         (["--images", people], "-o DIR")]:
        rr = run(qcal, "crops", "--models", models, *args)
        check(rr.returncode == 2 and needle in rr.stderr and rr.stderr.count("\n") == 1,
              f"bad input {args[:2]}: exit {rr.returncode}: {rr.stderr.strip()}")
check.finish()
