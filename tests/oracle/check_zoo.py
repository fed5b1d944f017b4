"""`qcal zoo` on a few networks of the zoo, checked against an independent
computation and for its tables:

- zoo has network x configuration x output rows (W8A8: 14 configurations,
  W4A8: 10), zoo_networks one row per network, status ok, the recommendation
  and sensitive layer filled in;
- the face networks are measured in domain, on the face crops `qcal crops`
  makes from the people photos, iris on the eye crops (`--kind eye`), the
  others on whole photos (data column);
- the W4A8 and W8A8 "float activations / per-channel weights" rows are
  recomputed without qcal's graph: NumPy fake-quantizes every conv,
  depthwise and MatMul weight of model.json per output channel at 4 and 8
  bits (narrow range, round half to even), TensorFlow.js runs the original
  and the quantized models on the held-out photos as qcal preprocessed them,
  and the SQNR over those photos must match;
- the best configuration is the per-channel W8A8 one with the best task
  metric of the primary output, then the highest worst output; the task
  metric (top-1 agreement, landmark error in pixels) of the weights-only rows
  is recomputed from the TF.js outputs;
- bad input: an unknown network, an unreadable image folder (exit 2, one line).
usage: check_zoo.py QCAL SOURCE_ROOT"""
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import oracle  # noqa: E402
import onnx_zoo  # noqa: E402
import tfjs_quant  # noqa: E402

qcal, root = sys.argv[1], sys.argv[2]
NETS = os.environ.get("QCAL_ZOO_MODELS", "emotion,liveness,iris").split(",")
LOWER = {"landmarks3", "landmarks5", "heatmap", "heatmap-logits", "value"}
FACE = {"facemesh", "emotion", "gender", "age", "mobilefacenet", "faceres", "liveness",
        "antispoof", "gear", "mobileface"}  # the networks that read face crops (analysis/zoo.inc)
models = subprocess.run([os.path.join(root, "scripts/fetch-models.sh")], check=True,
                        capture_output=True, text=True).stdout.strip()
images = os.path.join(subprocess.run([os.path.join(root, "scripts/fetch-data.sh")], check=True,
                                     capture_output=True, text=True).stdout.strip(), "images")
peers = onnx_zoo.peers(root)
check = oracle.Checks()




def col(t, name):
    v = t[name]
    return v.asstr()[()] if v.dtype.kind == "O" else v[()]


with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "zoo.h5")
    r = subprocess.run([qcal, "zoo", "--models", models, "--images", images, "--networks",
                        ",".join(NETS), "--calib", "4", "--held", "4", "-o", out],
                       capture_output=True, text=True)
    check(r.returncode == 0, f"qcal zoo --networks {','.join(NETS)}: {r.stderr.strip()[-300:]}")
    f = h5py.File(out, "r")
    z, n = f["zoo"], f["zoo_networks"]
    znet, zact, zwg = col(z, "network"), col(z, "act_method"), col(z, "weight_granularity")
    zwb, zab, zout, zdb = col(z, "weight_bits"), col(z, "act_bits"), col(z, "output"), col(z, "sqnr_db")
    check(sorted(col(n, "network")) == sorted(NETS) and all(s == "ok" for s in col(n, "status")),
          f"zoo_networks: {list(col(n, 'network'))}, status {list(col(n, 'status'))}")
    for net in NETS:
        k = list(col(n, "network")).index(net)
        rows = [i for i in range(len(znet)) if znet[i] == net]
        outs = list(dict.fromkeys(zout[i] for i in rows))
        w8 = [i for i in rows if zwb[i] == 8]
        w4 = [i for i in rows if zwb[i] == 4]
        check(len(w8) == 14 * len(outs) and len(w4) == 10 * len(outs)
              and all(zab[i] == 8 for i in rows),
              f"{net}: {len(w8)} W8A8 + {len(w4)} W4A8 rows for {len(outs)} output(s)")
        worst = {}
        for i in w8:
            key = (zact[i], zwg[i])
            worst[key] = min(worst.get(key, np.inf), zdb[i])
        # the best per-channel configuration: by the primary output's task metric (higher
        # agreement / cosine / IoU, lower error), then by the worst output
        ztm, ztv = col(z, "task_metric"), col(z, "task_value")
        task = {(zact[i], zwg[i]): ztv[i] for i in w8 if ztm[i]}
        lower = any(ztm[i] in LOWER for i in w8)
        cands = [(a, g) for (a, g) in worst if g == "per-channel" and a != "float"]
        pick = max(cands, key=lambda c: ((-task[c] if lower else task[c]) if c in task and
                                         not np.isnan(task[c]) else -np.inf, worst[c]))
        best = worst[pick]
        check(abs(best - col(n, "best_sqnr_db")[k]) < 1e-9 and col(n, "recommended")[k]
              and col(n, "sensitive_layer")[k] not in ("", "-"),
              f"{net}: best W8A8 {best:.2f} dB; recommended: {col(n, 'recommended')[k]}; most "
              f"sensitive layer {col(n, 'sensitive_layer')[k]}")
        # the held-out photos: qcal's interleaved split (datasets/image_dir.c)
        # of the photos, or of the face crops that qcal crops makes
        path = os.path.join(models, net + ".json")
        data = col(n, "data")[k]
        folder = images
        for kind in ("face", "eye"):
            if data.startswith(f"in domain: {kind} crops"):
                folder = os.path.join(tmp, kind + "-crops")
                if not os.path.isdir(folder):
                    subprocess.run([qcal, "crops", "--kind", kind, "--models", models, "-o",
                                    folder], check=True, capture_output=True)
        check(data.startswith("in domain: face crops") == (net in FACE) and
              data.startswith("in domain: eye crops") == (net == "iris"),
              f"{net}: measured on {data}")
        held = onnx_zoo.held_photos(folder, 4, 4)
        xs = []
        for j, name in enumerate(held):
            x = os.path.join(tmp, f"{net}_x{j}.npy")
            subprocess.run([qcal, "infer", path, "--image", os.path.join(folder, name),
                            "--save-input", x], check=True, capture_output=True)
            xs.append(x)
        names, ref = tfjs_quant.tfjs(root, peers, path, xs, os.path.join(tmp, net + "_ref"))
        for bits in (8, 4):
            qdir = os.path.join(tmp, f"{net}_q{bits}")
            os.makedirs(qdir)
            qm, _ = tfjs_quant.quantized_model(path, qdir, bits)
            _, qo = tfjs_quant.tfjs(root, peers, qm, xs, os.path.join(tmp, f"{net}_o{bits}"))
            for i, name in enumerate(names):
                a = np.concatenate([ref[j][i].ravel() for j in range(len(xs))]).astype(np.float64)
                b = np.concatenate([qo[j][i].ravel() for j in range(len(xs))]).astype(np.float64)
                want = 10 * np.log10((a * a).sum() / ((a - b) ** 2).sum())
                got = [zdb[i2] for i2 in rows if zwb[i2] == bits and zact[i2] == "float"
                       and zwg[i2] == "per-channel" and zout[i2] == name]
                check(len(got) == 1 and abs(got[0] - want) < 0.05,
                      f"{net}: W{bits} weights only, output {name}: qcal zoo "
                      f"{got[0] if got else float('nan'):.3f} dB, NumPy + TF.js {want:.3f} dB")
                # the task metric of the primary output, computed here from the same outputs
                tm = [(ztm[i2], ztv[i2]) for i2 in rows if zwb[i2] == bits and zact[i2] == "float"
                      and zwg[i2] == "per-channel" and zout[i2] == name and ztm[i2]]
                if not tm:
                    continue
                metric, value = tm[0]
                pairs = [(ref[j][i].ravel().astype(np.float64), qo[j][i].ravel().astype(np.float64))
                         for j in range(len(xs))]
                if metric == "class":
                    mine = np.mean([np.argmax(u) == np.argmax(v) for u, v in pairs])
                elif metric == "landmarks3":
                    mine = np.mean(np.concatenate([np.hypot(u[0::3] - v[0::3], u[1::3] - v[1::3])
                                                   for u, v in pairs]))
                elif metric == "embedding":
                    mine = np.mean([u @ v / np.sqrt((u @ u) * (v @ v)) for u, v in pairs])
                else:
                    continue
                check(abs(mine - value) <= 1e-6 * max(1, abs(mine)),
                      f"{net}: W{bits} weights only, {name} {metric}: qcal zoo {value:.6g}, "
                      f"NumPy on TF.js outputs {mine:.6g}")
    for what, args, needle in [
            ("unknown network", ["--networks", "nope"], "not a zoo network"),
            ("unreadable image folder", ["--networks", "emotion", "--images",
                                         os.path.join(tmp, "none")], "cannot open image folder")]:
        o = os.path.join(tmp, "bad.h5")
        r = subprocess.run([qcal, "zoo", "--models", models, "-o", o] + args, capture_output=True,
                           text=True)
        lines = r.stderr.strip().splitlines()
        errs = [l for l in lines if l.startswith("qcal: error")]
        check(r.returncode in (1, 2) and needle in r.stderr and len(errs) <= 1
              and not os.path.exists(o), f"bad input, {what}: exit {r.returncode}: {r.stderr.strip()[-200:]}")

check.finish("zoo: ")
