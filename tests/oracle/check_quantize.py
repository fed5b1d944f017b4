"""`qcal quantize` checked by independent tools:

- the written model passes Debian python3-onnx's checker (full check, with
  shape inference), is opset >= 13, and has Q/DQ exactly where the placement
  says: every Conv/Gemm/MatMul reads its input and its weight through a
  DequantizeLinear; weights per output channel (axis 0, one scale per output
  channel), zero points int8 0, scales = amax / 127 of the --json file;
- ONNX Runtime (npm onnxruntime-node, graph optimizations disabled, so the
  Q/DQ model runs as written) agrees with `qcal infer` on the same file: the
  first two quantized activations hold the same int8 codes (at most 1e-4 of
  them one step apart), and the outputs agree >= 60 dB. Where they do not, a
  1-ulp difference between two FP32 convolutions moved a value across a
  rounding boundary and the one-step change spread layer by layer (qcal
  against itself with its two FP32 engines shows the same); the bound there
  is 30 dB;
- a Q/DQ model written by python3-onnx's helpers (uint8 activations with a
  zero point, per-channel int8 weights) runs in qcal as in ONNX Runtime;
- `qcal infer --engine int8` lowers every convolution to int8 and stays
  >= 30 dB from the qdq engine (the same rounding-flip spread as above);
- `--method none` writes the float model, which ONNX Runtime runs as qcal
  runs model.json;
- the end-to-end SQNR of the Q/DQ model (ONNX Runtime, held-out photos) is
  the sweep's fake-quant row for the same configuration;
- bad input: exit 2 with one line.
QCAL_QUANTIZE_MODELS="a b" picks a subset (the sanitizer build runs one).
usage: check_quantize.py QCAL SOURCE_ROOT"""
import json
import re
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(__file__))
import oracle  # noqa: E402
from oracle import run  # noqa: E402
import onnx_zoo  # noqa: E402

qcal, root = sys.argv[1], sys.argv[2]
NETS = os.environ.get("QCAL_QUANTIZE_MODELS", "").split() or [
    "emotion", "gender", "liveness", "resnet18", "mobilenet_v2"]
models = subprocess.run([os.path.join(root, "scripts/fetch-models.sh")], check=True,
                        capture_output=True, text=True).stdout.strip()
images = os.path.join(subprocess.run([os.path.join(root, "scripts/fetch-data.sh")], check=True,
                                     capture_output=True, text=True).stdout.strip(), "images")
peers = onnx_zoo.peers(root)
IMAGENET = ["--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225"]
check = oracle.Checks()






def ort(model, x, prefix, opt="disabled"):
    env = dict(os.environ, QCAL_PEERS=peers)
    r = run("node", os.path.join(root, "tests/oracle/ort_run.js"), model, x, prefix, 2, 1, opt,
            env=env)
    if r.returncode:
        raise RuntimeError(r.stderr)
    info = json.loads(r.stdout.strip().splitlines()[-1])
    return {n: np.load(f"{prefix}{i}.npy") for i, n in enumerate(info["outputs"])}


def qcal_infer(model, x, out, env=None):
    r = run(qcal, "infer", model, "--input", x, "-o", out, env=env)
    if r.returncode:
        raise RuntimeError(r.stderr)
    z = np.load(out)
    return {k: z[k] for k in z.files}


def worst_sqnr(a, b):
    return min(onnx_zoo.sqnr_db(a[k], b[k]) for k in a)


def source(name):
    if name in ("resnet18", "mobilenet_v2"):
        return onnx_zoo.export(name)[0], IMAGENET
    return os.path.join(models, name + ".json"), []


def structure(path, js):
    """Every weighted node reads input and weight through DequantizeLinear."""
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    g = m.graph
    init = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    prod = {o: n for n in g.node for o in n.output}
    scales = {t: e for t, e in js["tensors"].items()}
    ok, why = True, ""
    opset = max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))
    weighted = [n for n in g.node if n.op_type in ("Conv", "ConvTranspose", "Gemm", "MatMul")]
    for n in weighted:
        for slot in (0, 1):
            dq = prod.get(n.input[slot])
            if not dq or dq.op_type != "DequantizeLinear":
                ok, why = False, f"{n.name} input {slot} not through DequantizeLinear"
                continue
            q = prod.get(dq.input[0])
            x_name = q.input[0] if q is not None else None
            s, zp = init[dq.input[1]], init[dq.input[2]]
            if q is None or q.op_type != "QuantizeLinear" or zp.dtype != np.int8 or zp.any():
                ok, why = False, f"{n.name}: not a symmetric int8 Q/DQ pair"
                continue
            axis = next((a.i for a in dq.attribute if a.name == "axis"), None)
            if slot == 1 and x_name in init:
                w = init[x_name]
                tb = next((a.i for a in n.attribute if a.name == "transB"), 0)
                want_axis = {"ConvTranspose": 1, "MatMul": w.ndim - 1,
                             "Gemm": 0 if tb else 1}.get(n.op_type, 0)
                if s.size != w.shape[want_axis] or axis != want_axis:
                    ok, why = False, f"{n.name}: weight scales {s.shape} axis {axis}"
            e = scales.get(x_name)
            if e is None:
                ok, why = False, f"{x_name} not in the JSON"
                continue
            amax = np.atleast_1d(np.asarray(e["amax"], np.float32))
            want = np.where(amax > 2.0 ** -24, amax / np.float32(127), 1).astype(np.float32)
            if not np.allclose(np.atleast_1d(s), want, rtol=1e-6, atol=0):
                ok, why = False, f"{x_name}: scale != amax/127"
    return ok and len(weighted) > 0 and opset >= 13, f"{len(weighted)} weighted nodes, opset " \
        f"{opset} {why}"


def first_codes(path, x, tmp):
    """int8 codes of the first two activation QuantizeLinear outputs, qcal vs ORT."""
    m = onnx.load(path)
    init = {t.name for t in m.graph.initializer}
    qs = [n.output[0] for n in m.graph.node
          if n.op_type == "QuantizeLinear" and n.input[0] not in init][:2]
    for q in qs:
        m.graph.output.append(helper.make_tensor_value_info(q, TensorProto.INT8, None))
    p = os.path.join(tmp, "codes.onnx")
    onnx.save(m, p)
    a, b = ort(p, x, os.path.join(tmp, "c")), qcal_infer(p, x, os.path.join(tmp, "c.npz"))
    d = [np.abs(a[q].astype(np.int32) - b[q].astype(np.int32)) for q in qs]
    return max(float((e != 0).mean()) for e in d), max(int(e.max()) for e in d)


with tempfile.TemporaryDirectory() as tmp:
    for net in NETS:
        src, pre = source(net)
        out, js = os.path.join(tmp, net + ".qdq.onnx"), os.path.join(tmp, net + ".json")
        cache = os.path.join(tmp, net + ".cache")
        r = run(qcal, "quantize", src, "--images", images, "--calib", 8, *pre, "-o", out,
                "--json", js, "--trt-cache", cache)
        check(r.returncode == 0, f"{net}: quantize: {r.stdout.strip()[:160]} {r.stderr[-300:]}")
        if r.returncode:
            continue
        # quantize runs the file it wrote against the fake-quant simulation
        # of the same points (the sweep's arithmetic, pytorch-quantization's:
        # x * (127 / amax), then / (127 / amax)); ONNX's Q/DQ divides and
        # multiplies by amax / 127 instead, one ulp apart, and a flipped code
        # spreads as in the ORT comparison below
        m = re.search(r"simulation of the same points (exactly|at (-?[\d.]+) dB)", r.stdout)
        sim_db = float("nan") if not m else float("inf") if not m.group(2) else float(m.group(2))
        want = 50 if net == "liveness" else 30
        check(sim_db >= want, f"{net}: the written file vs the fake-quant simulation of the same "
              f"points {sim_db:.1f} dB (>= {want})")
        j = json.load(open(js))
        ok, what = structure(out, j)
        check(ok, f"{net}: checker + placement: {what}")
        lines = open(cache).read().splitlines()
        acts = [t for t, e in j["tensors"].items() if e["kind"] == "activation"]
        check(lines[0].startswith("TRT-") and len(lines) == 1 + len(acts),
              f"{net}: TensorRT cache has a header and {len(acts)} activation lines")
        # a photo, preprocessed as qcal did
        x = os.path.join(tmp, net + "_x.npy")
        r = run(qcal, "infer", src, "--image", os.path.join(images, "astronaut.png"), *pre,
                "--save-input", x, "-o", os.path.join(tmp, "f.npz"))
        check(r.returncode == 0, f"{net}: infer --save-input {r.stderr[-200:]}")
        o = ort(out, x, os.path.join(tmp, "o"))
        q = qcal_infer(out, x, os.path.join(tmp, "q.npz"))
        db = worst_sqnr(o, q)
        frac, step = first_codes(out, x, tmp)
        check(frac <= 1e-4 and step <= 1,
              f"{net}: first two quantized activations: {frac:.1e} of the int8 codes differ, "
              f"by at most {step} step")
        if db >= 60:
            check(True, f"{net}: ONNX Runtime vs qcal infer on the Q/DQ model {db:.1f} dB >= 60")
        else:
            qr = qcal_infer(out, x, os.path.join(tmp, "r.npz"),
                            env=dict(os.environ, QCAL_CONV_REF="1"))
            floor = worst_sqnr(q, qr)
            check(db >= 30, f"{net}: ONNX Runtime vs qcal infer {db:.1f} dB (< 60: rounding flips "
                  f"spread; qcal's own two FP32 engines {floor:.1f} dB), >= 30")

        # the int8 engine on the same file, against the qdq engine
        r = run(qcal, "infer", out, "--input", x, "--engine", "int8", "-o",
                os.path.join(tmp, "i8.npz"))
        if r.returncode:
            check(False, f"{net}: infer --engine int8: {r.stderr.strip()}")
        else:
            info = json.loads(r.stdout)
            dbs = [d if d is not None else float("inf") for d in info["sqnr_vs_qdq_db"]]
            i8 = np.load(os.path.join(tmp, "i8.npz"))
            ort8 = ort(out, x, os.path.join(tmp, "o8"), "all")
            d_ort = min(onnx_zoo.sqnr_db(ort8[k], i8[k]) for k in ort8)
            check(info["int8_layers"] == info["qdq_layers"] > 0 and min(dbs) >= 30,
                  f"{net}: int8 engine: {info['int8_layers']} of {info['qdq_layers']} "
                  f"layers in int8, {min(dbs):.1f} dB vs qdq (>= 30); ONNX Runtime's own "
                  f"int8 execution vs qcal's {d_ort:.1f} dB")

    # --weights per-tensor: one scale per weight, no axis
    pt = os.path.join(tmp, "emotion.pt.onnx")
    r = run(qcal, "quantize", os.path.join(models, "emotion.json"), "--images", images, "--calib",
            4, "--weights", "per-tensor", "-o", pt)
    m = onnx.load(pt) if r.returncode == 0 else None
    init = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer} if m else {}
    wdq = [n for n in (m.graph.node if m else []) if n.op_type == "DequantizeLinear"
           and n.input[0].endswith("_quantized") and any(
               q.output[0] == n.input[0] and q.input[0] in init
               for q in m.graph.node if q.op_type == "QuantizeLinear")]
    check(r.returncode == 0 and len(wdq) == 13 and all(
        init[n.input[1]].ndim == 0 and not any(a.name == "axis" for a in n.attribute) for n in wdq),
        f"--weights per-tensor: {len(wdq)} weight DQ nodes, each with one scale and no axis")

    # the float model (a TF.js -> ONNX converter) runs in ONNX Runtime as qcal runs model.json
    src = os.path.join(models, "emotion.json")
    f32 = os.path.join(tmp, "emotion.f32.onnx")
    r = run(qcal, "quantize", src, "--method", "none", "-o", f32)
    check(r.returncode == 0 and "float model" in r.stdout, f"--method none: {r.stdout.strip()}")
    x = os.path.join(tmp, "emotion_x.npy")
    run(qcal, "infer", src, "--image", os.path.join(images, "dog.jpg"), "--save-input", x, "-o",
        os.path.join(tmp, "f.npz"))
    onnx.checker.check_model(onnx.load(f32), full_check=True)
    a = ort(f32, x, os.path.join(tmp, "f"), "all")
    b = qcal_infer(src, x, os.path.join(tmp, "g.npz"))
    db = min(onnx_zoo.sqnr_db(b[k], a[k]) for k in a)
    check(db >= 100, f"emotion.json as float ONNX: ONNX Runtime vs qcal on model.json {db:.1f} dB")

    # the end-to-end SQNR of the Q/DQ model is the sweep's fake-quant row
    # (QCAL_ORACLE_QUICK: the sanitizer build leaves it to the plain one)
    h5 = os.path.join(tmp, "sweep.h5")
    quick = bool(os.environ.get("QCAL_ORACLE_QUICK"))
    r = run("true") if quick else run(qcal, "sweep", "--model", src, "--images", images, "--calib",
                                      8, "--no-synthetic", "-o", h5)
    wq = os.path.join(tmp, "emotion.w.onnx")
    r2 = run(qcal, "quantize", src, "--images", images, "--calib", 8, "--placement", "weighted",
             "--method", "entropy", "-o", wq)
    if r.returncode or r2.returncode:
        check(False, f"sweep / quantize: {r.stderr[-300:]} {r2.stderr[-300:]}")
    elif os.environ.get("QCAL_ORACLE_QUICK"):
        print("skip emotion: Q/DQ model vs the sweep's row (QCAL_ORACLE_QUICK)")
    else:
        with h5py.File(h5) as f:
            t = f["e2e_outputs"]
            rows = [i for i in range(len(t["act_method"]))
                    if t["act_method"].asstr()[i] == "entropy"
                    and t["weight_granularity"].asstr()[i] == "per-channel"
                    and t["bits"][i] == 8]
            want = float(t["sqnr_db"][rows[0]])
            names = f["images"]["name"].asstr()[()]
            split = f["images"]["split"].asstr()[()]
        held = [n for n, s in zip(names, split) if s == "held-out"]
        sig = err = 0.0
        for n in held:
            x = os.path.join(tmp, "h.npy")
            run(qcal, "infer", src, "--image", os.path.join(images, n), "--save-input", x, "-o",
                os.path.join(tmp, "f.npz"))
            ref = list(ort(f32, x, os.path.join(tmp, "f")).values())[0].astype(np.float64)
            got = list(ort(wq, x, os.path.join(tmp, "w")).values())[0].astype(np.float64)
            sig += (ref ** 2).sum()
            err += ((ref - got) ** 2).sum()
        got_db = 10 * np.log10(sig / err)
        check(abs(got_db - want) <= 0.5,
              f"emotion: Q/DQ model in ONNX Runtime on {len(held)} held-out photos {got_db:.2f} dB, "
              f"the sweep's entropy / per-channel row {want:.2f} dB")

    # a Q/DQ model another tool wrote: uint8 activations with zero points
    rng = np.random.default_rng(3)
    w = rng.normal(0, 0.2, (8, 3, 3, 3)).astype(np.float32)
    ws = (np.abs(w).reshape(8, -1).max(1) / 127).astype(np.float32)
    wq8 = np.clip(np.rint(w / ws[:, None, None, None]), -127, 127).astype(np.int8)
    w2 = rng.normal(0, 0.2, (4, 8, 1, 1)).astype(np.float32)
    inits = [numpy_helper.from_array(a, n) for a, n in [
        (np.float32(0.02), "xs"), (np.uint8(128), "xz"), (wq8, "wq"), (ws, "ws"),
        (np.zeros(8, np.int8), "wz"), (rng.normal(0, 0.1, 8).astype(np.float32), "b"),
        (np.float32(0.01), "ys"), (np.uint8(0), "yz"), (w2, "w2")]]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
        helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["wd"], axis=0),
        helper.make_node("Conv", ["xd", "wd", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("QuantizeLinear", ["r", "ys", "yz"], ["rq"]),
        helper.make_node("DequantizeLinear", ["rq", "ys", "yz"], ["rd"]),
        helper.make_node("Conv", ["rd", "w2"], ["y"])]
    gr = helper.make_graph(nodes, "ext", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, 3, 16, 16])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, [1, 4, 16, 16])], inits)
    ext = os.path.join(tmp, "ext.onnx")
    mdl = helper.make_model(gr, opset_imports=[helper.make_opsetid("", 13)])
    mdl.ir_version = 8
    onnx.checker.check_model(mdl)
    onnx.save(mdl, ext)
    x = os.path.join(tmp, "ext_x.npy")
    np.save(x, rng.uniform(-2, 2, (1, 3, 16, 16)).astype(np.float32))
    a, b = ort(ext, x, os.path.join(tmp, "e")), qcal_infer(ext, x, os.path.join(tmp, "e.npz"))
    db = worst_sqnr(a, b)
    check(db >= 60, f"a python3-onnx Q/DQ model (uint8, zero point 128): ORT vs qcal {db:.1f} dB")

    # bad input: one line, exit 2
    nq = helper.make_model(helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "noq",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])]),
        opset_imports=[helper.make_opsetid("", 13)])
    noq = os.path.join(tmp, "noq.onnx")
    onnx.save(nq, noq)
    os.mkdir(os.path.join(tmp, "adir"))
    cases = [
        ("no quantizable node", [noq, "--images", images, "-o", os.path.join(tmp, "a.onnx")],
         "no quantizable node"),
        ("unreadable image folder", [src, "--images", os.path.join(tmp, "nope"), "-o",
                                     os.path.join(tmp, "a.onnx")], "cannot open image folder"),
        ("output is a folder", [src, "--images", images, "-o", os.path.join(tmp, "adir")],
         "folder"),
        ("already quantized", [ext, "--images", images, "-o", os.path.join(tmp, "a.onnx")],
         "already holds Q/DQ"),
        ("4-bit ONNX", [src, "--images", images, "--bits", "4", "-o", os.path.join(tmp, "a.onnx")],
         "8 only"),
        ("no -o", [src, "--images", images], "-o OUT.onnx"),
    ]
    for what, args, needle in cases:
        r = run(qcal, "quantize", *args)
        lines = r.stderr.strip().splitlines()
        check(r.returncode == 2 and len(lines) == 1 and needle in r.stderr and not os.path.exists(
            os.path.join(tmp, "a.onnx")), f"bad input, {what}: exit {r.returncode}: {r.stderr.strip()}")

check.finish("quantize: ")
