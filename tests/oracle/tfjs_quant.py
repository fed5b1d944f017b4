"""Independent fake quantization of TF.js graph models for the oracles:
NumPy quantizes every conv, depthwise and MatMul weight of model.json per
output channel, and TensorFlow.js (npm @tensorflow/tfjs, CPU) runs the
original and the quantized model. Shared by check_sweep_models.py and
check_zoo.py."""
import json
import os
import subprocess

import numpy as np


def fake_quant(w, axis, bits=8):
    """Narrow-range per-channel fake quantization, as qcal's kernels."""
    w = np.asarray(w, np.float32)
    red = tuple(d for d in range(w.ndim) if d != axis)
    amax = np.abs(w).max(axis=red, keepdims=True).astype(np.float32)
    qmax = np.float32(2 ** (bits - 1) - 1)
    s = np.where(amax > 0, qmax / np.where(amax > 0, amax, 1), 0).astype(np.float32)
    q = np.clip(np.rint(w * s), -qmax, qmax).astype(np.float32)
    return (q / np.where(s == 0, np.float32(1), s)).astype(np.float32)


def quantized_model(src_json, out_dir, bits=8):
    """model.json + one .bin with every conv/depthwise/MatMul weight
    fake-quantized per output channel (TF layouts: HWIO axis 3, depthwise
    [kh, kw, C, M] channel c*M + m, MatMul [K, N] axis 1 or [N, K] with
    transpose_b)."""
    j = json.load(open(src_json))
    base = os.path.dirname(src_json)
    nodes = {n["name"]: n for n in j["modelTopology"]["node"]}
    role = {}
    for n in nodes.values():
        op, ins = n["op"], n.get("input", [])
        if op in ("_FusedConv2D", "Conv2D") and len(ins) > 1:
            role[ins[1]] = "conv"
        elif op in ("DepthwiseConv2dNative", "FusedDepthwiseConv2dNative") and len(ins) > 1:
            role[ins[1]] = "dw"
        elif op in ("MatMul", "_FusedMatMul") and len(ins) > 1:
            tb = n.get("attr", {}).get("transpose_b", {}).get("b", False)
            role[ins[1]] = "mm_t" if tb else "mm"
    blobs = []
    for g in j["weightsManifest"]:
        data = b"".join(open(os.path.join(base, p), "rb").read() for p in g["paths"])
        at = 0
        for w in g["weights"]:
            assert "quantization" not in w, "float32 manifests only"
            dt = np.float32 if w["dtype"] == "float32" else np.int32
            n = int(np.prod(w["shape"])) if w["shape"] else 1
            a = np.frombuffer(data, dt, n, at).reshape(w["shape"])
            at += 4 * n
            r = role.get(w["name"])
            if r == "conv":
                a = fake_quant(a, 3, bits)
            elif r == "dw":
                kh, kw, c, m = a.shape
                a = fake_quant(a.reshape(kh, kw, c * m), 2, bits).reshape(a.shape)
            elif r == "mm":
                a = fake_quant(a, 1, bits)
            elif r == "mm_t":
                a = fake_quant(a, 0, bits)
            blobs.append(np.ascontiguousarray(a).tobytes())
        g["paths"] = ["q.bin"]
    # one shard holding every group in order
    assert len(j["weightsManifest"]) == 1
    open(os.path.join(out_dir, "q.bin"), "wb").write(b"".join(blobs))
    json.dump(j, open(os.path.join(out_dir, "model.json"), "w"))
    return os.path.join(out_dir, "model.json"), sum(r is not None for r in role.values())


def tfjs(root, peers, model, inputs, out):
    os.makedirs(out, exist_ok=True)
    r = subprocess.run(["node", os.path.join(root, "tests/oracle/tfjs_run.js"), model, inputs[0],
                        out] + inputs[1:], capture_output=True, text=True,
                       env=dict(os.environ, QCAL_PEERS=peers))
    assert r.returncode == 0, r.stderr
    names = json.loads(r.stdout.strip().splitlines()[-1])["outputs"]
    return names, [[np.load(os.path.join(out, f"{k}_{i}.npy" if k else f"{i}.npy"))
                    for i in range(len(names))] for k in range(len(inputs))]
