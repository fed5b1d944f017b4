"""`qcal infer` from the command line: outputs named after the graph's
outputs, --image preprocessing checked against NumPy, and every bad input
(corrupt, truncated, missing external data, unsupported op, cycle, dangling
input, wrong shape or dtype, NaN, empty) refused with exit status 2, one
stderr line naming the file, and nothing written.
usage: check_infer.py QCAL [SOURCE_ROOT]"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

qcal = sys.argv[1]
fails = 0


def check(cond, what):
    global fails
    if not cond:
        fails += 1
    print(("ok   " if cond else "FAIL ") + what)


def run(*args):
    return subprocess.run([qcal, "infer", *args], capture_output=True, text=True)


def save(model, path):
    onnx.save(model, path)
    return path


def small_model(tmp, name="m.onnx", op_extra=None):
    """x[1,3,8,8] -> Conv(4, 3x3, pad 1) -> Relu -> Split(axis 1) -> two outputs"""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Split", ["r"], ["out/a:0", "out b"], name="split", axis=1)]
    if op_extra:
        nodes += op_extra
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                     ["N", 3, 8, 8])],
                          [helper.make_tensor_value_info("out/a:0", TensorProto.FLOAT, None),
                           helper.make_tensor_value_info("out b", TensorProto.FLOAT, None)],
                          [w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    return save(m, os.path.join(tmp, name)), w


def conv_ref(x, w):
    n, c, h, wd = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    y = np.zeros((n, w.shape[0], h, wd), np.float64)
    for i in range(3):
        for j in range(3):
            y += np.einsum("nchw,oc->nohw", xp[:, :, i:i + h, j:j + wd], w[:, :, i, j])
    return np.maximum(y, 0)


def bad(args, needle, out=None, label=None):
    r = run(*args)
    lines = r.stderr.strip().splitlines()
    ok = r.returncode == 2 and len(lines) == 1 and needle in r.stderr and not r.stdout
    ok = ok and (out is None or not os.path.exists(out))
    check(ok, f"{label or needle}: exit {r.returncode}, stderr {r.stderr.strip()!r}")


with tempfile.TemporaryDirectory() as tmp:
    model, w = small_model(tmp)
    wv = numpy_helper.to_array(w)
    x = np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(np.float32)
    xp = os.path.join(tmp, "x.npy")
    np.save(xp, x)
    out = os.path.join(tmp, "out.npz")
    r = run(model, "--input", xp, "-o", out, "--repeat", "3")
    check(r.returncode == 0, f"runs: {r.stderr.strip()}")
    info = json.loads(r.stdout)
    check([o["name"] for o in info["outputs"]] == ["out/a:0", "out b"] and
          info["outputs"][0]["shape"] == [2, 2, 8, 8] and info["inputs"][0]["shape"] == [2, 3, 8, 8]
          and info["latency_ms"] > 0, "JSON line: names, shapes, latency")
    z = np.load(out)
    ref = conv_ref(x.astype(np.float64), wv.astype(np.float64))
    got = np.concatenate([z["out/a:0"], z["out b"]], axis=1)
    err = float(np.abs(got - ref).max())
    check(sorted(z.files) == ["out b", "out/a:0"] and err < 1e-4,
          f".npz members named by graph outputs, max error {err:.2e} vs NumPy")

    # --image: a PPM photo, resized and normalised as documented
    img = (np.arange(5 * 7 * 3) * 7 % 256).astype(np.uint8).reshape(5, 7, 3)
    ppm = os.path.join(tmp, "photo.ppm")
    with open(ppm, "wb") as f:
        f.write(b"P6\n7 5\n255\n" + img.tobytes())
    r = run(model, "--image", ppm, "--input-size", "8", "--mean", "0.5,0.5,0.5", "--std",
            "0.25,0.25,0.25", "-o", out)
    check(r.returncode == 0, f"--image runs: {r.stderr.strip()}")
    # bilinear, align_corners=False, as the importer documents
    def resize(a, H, W):
        h, wd = a.shape[:2]
        ys = np.maximum((np.arange(H) + 0.5) * h / H - 0.5, 0)
        xs = np.maximum((np.arange(W) + 0.5) * wd / W - 0.5, 0)
        y0 = np.minimum(ys.astype(int), h - 1); y1 = np.minimum(y0 + 1, h - 1); wy = ys - y0
        x0 = np.minimum(xs.astype(int), wd - 1); x1 = np.minimum(x0 + 1, wd - 1); wx = xs - x0
        a = a.astype(np.float64)
        top = a[y0][:, x0] * (1 - wx)[None, :, None] + a[y0][:, x1] * wx[None, :, None]
        bot = a[y1][:, x0] * (1 - wx)[None, :, None] + a[y1][:, x1] * wx[None, :, None]
        return top * (1 - wy)[:, None, None] + bot * wy[:, None, None]
    xi = ((resize(img, 8, 8) / 255 - 0.5) / 0.25).transpose(2, 0, 1)[None]
    ref = conv_ref(xi, wv.astype(np.float64))
    z = np.load(out)
    got = np.concatenate([z["out/a:0"], z["out b"]], axis=1)
    check(float(np.abs(got - ref).max()) < 1e-3, "--image preprocessing matches NumPy")

    # bad inputs: exit 2, one line, nothing written
    raw = open(model, "rb").read()
    corrupt = os.path.join(tmp, "corrupt.onnx")
    open(corrupt, "wb").write(b"\x08\xff\xff\xff\xff\xff\xff" + os.urandom(200))
    bad([corrupt, "--input", xp, "-o", out + "1"], "corrupt.onnx", out + "1")
    trunc = os.path.join(tmp, "trunc.onnx")
    open(trunc, "wb").write(raw[: len(raw) // 2])
    bad([trunc, "--input", xp, "-o", out + "2"], "trunc.onnx", out + "2")
    bad([os.path.join(tmp, "nope.onnx"), "--input", xp], "nope.onnx", label="missing model")
    # external data file missing
    m = onnx.load(model)
    onnx.save_model(m, os.path.join(tmp, "ext.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="ext.bin", size_threshold=0)
    r = run(os.path.join(tmp, "ext.onnx"), "--input", xp)
    check(r.returncode == 0, "external data beside the model loads")
    os.remove(os.path.join(tmp, "ext.bin"))
    bad([os.path.join(tmp, "ext.onnx"), "--input", xp, "-o", out + "3"],
        "cannot open external data", out + "3")
    # unsupported op names op and node
    m = onnx.load(model)
    m.graph.node.append(helper.make_node("Det", ["r"], ["d"], name="det0"))
    save(m, os.path.join(tmp, "det.onnx"))
    bad([os.path.join(tmp, "det.onnx"), "--input", xp], "node 'det0': op 'Det' is not supported")
    # unsupported attribute value names op, node and attribute
    m = onnx.load(model)
    m.graph.node[0].attribute.append(helper.make_attribute("auto_pad", "SIDEWAYS"))
    save(m, os.path.join(tmp, "pad.onnx"))
    bad([os.path.join(tmp, "pad.onnx"), "--input", xp],
        "Conv node 'conv': attribute 'auto_pad' = 'SIDEWAYS' is not supported")
    # cycle and dangling input
    m = onnx.load(model)
    m.graph.node[1].input[0] = "out b"
    save(m, os.path.join(tmp, "cycle.onnx"))
    bad([os.path.join(tmp, "cycle.onnx"), "--input", xp], "cycle")
    m = onnx.load(model)
    m.graph.node[1].input[0] = "ghost"
    save(m, os.path.join(tmp, "dangling.onnx"))
    bad([os.path.join(tmp, "dangling.onnx"), "--input", xp], "reads 'ghost', which no node")
    # wrong shape, dtype, NaN, empty
    np.save(os.path.join(tmp, "x4.npy"), np.zeros((1, 4, 8, 8), np.float32))
    bad([model, "--input", os.path.join(tmp, "x4.npy"), "-o", out + "4"],
        "expects shape [?,3,8,8], got [1,4,8,8]", out + "4")
    np.save(os.path.join(tmp, "x64.npy"), x.astype(np.float64))
    bad([model, "--input", os.path.join(tmp, "x64.npy")], "is float32", label="float64 input")
    xn = x.copy(); xn[0, 1, 2, 3] = np.nan
    np.save(os.path.join(tmp, "xnan.npy"), xn)
    bad([model, "--input", os.path.join(tmp, "xnan.npy")], "xnan.npy", label="NaN input")
    np.save(os.path.join(tmp, "x0.npy"), np.zeros((0, 3, 8, 8), np.float32))
    bad([model, "--input", os.path.join(tmp, "x0.npy")], "empty", label="empty input")
    bad([model, "--input", xp, "--repeat", "0"], "--repeat", label="--repeat 0")
    bad([model], "exactly one of --input", label="no input")
    # TF.js graph models: NHWC in and out, and their bad inputs
    def tfjs(tag, wbytes, dtype="float32", op="Conv2D", paths=("w.bin",), mean_axes=None):
        d = os.path.join(tmp, "tfjs_" + tag)
        os.makedirs(d)
        open(os.path.join(d, "w.bin"), "wb").write(wbytes)
        s64 = lambda t: __import__("base64").b64encode(t.encode()).decode()
        model = {"format": "graph-model", "modelTopology": {"node": [
            {"name": "x", "op": "Placeholder", "attr": {"dtype": {"type": "DT_FLOAT"},
             "shape": {"shape": {"dim": [{"size": "1"}, {"size": "4"}, {"size": "5"}, {"size": "3"}]}}}},
            {"name": "w", "op": "Const", "attr": {"dtype": {"type": "DT_FLOAT"}}},
            {"name": "conv", "op": op, "input": ["x", "w"], "attr": {
                "strides": {"list": {"i": ["1", "1", "1", "1"]}}, "padding": {"s": s64("SAME")},
                "data_format": {"s": s64("NHWC")}}},
            {"name": "out", "op": "Relu", "input": ["conv"]}]},
            "weightsManifest": [{"paths": list(paths), "weights": [
                {"name": "w", "shape": [1, 1, 3, 2], "dtype": dtype}]}]}
        if mean_axes is not None:  # reduce the conv output (an NCHW value inside)
            nodes = model["modelTopology"]["node"]
            nodes[-1] = {"name": "axes", "op": "Const", "attr": {"dtype": {"type": "DT_INT32"}}}
            nodes.append({"name": "out", "op": "Mean", "input": ["conv", "axes"],
                          "attr": {"keep_dims": {"b": False}}})
            model["weightsManifest"][0]["weights"].append(
                {"name": "axes", "shape": [len(mean_axes)], "dtype": "int32"})
            wbytes += np.array(mean_axes, np.int32).tobytes()
            open(os.path.join(d, "w.bin"), "wb").write(wbytes)
        p = os.path.join(d, "model.json")
        json.dump(model, open(p, "w"))
        return p
    wv = np.random.default_rng(3).standard_normal((1, 1, 3, 2)).astype(np.float32)
    xt = np.random.default_rng(4).standard_normal((1, 4, 5, 3)).astype(np.float32)
    np.save(os.path.join(tmp, "xt.npy"), xt)
    m = tfjs("ok", wv.tobytes())
    r = run(m, "--input", os.path.join(tmp, "xt.npy"), "-o", out)
    ref = np.maximum(np.einsum("nhwc,co->nhwo", xt, wv[0, 0]), 0)
    ok = r.returncode == 0 and json.loads(r.stdout)["outputs"][0]["name"] == "out"
    check(ok and float(np.abs(np.load(out)["out"] - ref).max()) < 1e-5,
          f"TF.js model: NHWC in and out, named by node, matches NumPy {r.stderr.strip()}")
    for axes in ([1], [3], [1, 2], [0]):
        m = tfjs("mean" + "".join(map(str, axes)), wv.tobytes(), mean_axes=axes)
        r = run(m, "--input", os.path.join(tmp, "xt.npy"), "-o", out)
        ref = np.einsum("nhwc,co->nhwo", xt, wv[0, 0]).mean(axis=tuple(axes))
        got = np.load(out)["out"] if r.returncode == 0 else None
        check(got is not None and got.shape == ref.shape and float(np.abs(got - ref).max()) < 1e-5,
              f"TF.js Mean over NHWC axes {axes} of a conv output: shape and values")
    bad([tfjs("short", wv.tobytes()[:20]), "--input", os.path.join(tmp, "xt.npy")],
        "the weight file (w.bin) holds 20", label="TF.js manifest disagrees with the .bin")
    bad([tfjs("dtype", wv.tobytes(), dtype="complex64"), "--input", os.path.join(tmp, "xt.npy")],
        "weight 'w' is complex64, which is not supported", label="TF.js unknown dtype")
    bad([tfjs("op", wv.tobytes(), op="FrobConv"), "--input", os.path.join(tmp, "xt.npy")],
        "FrobConv node 'conv': op 'FrobConv' is not supported", label="TF.js unsupported op")
    bad([tfjs("path", wv.tobytes(), paths=("../w.bin",)), "--input", os.path.join(tmp, "xt.npy")],
        "must be a plain path beside the model", label="TF.js weight path outside the folder")
    # fuzz regressions of the TF.js graph importer: one error line, no crash
    import glob
    import shutil
    root = sys.argv[2] if len(sys.argv) > 2 else None
    for f in sorted(glob.glob(os.path.join(root or ".", "tests/fuzz/regressions/tfjs-*.json"))):
        d = tempfile.mkdtemp(dir=tmp)
        shutil.copy(f, os.path.join(d, "model.json"))
        open(os.path.join(d, "w.bin"), "wb").write(bytes(1024))
        r = run(os.path.join(d, "model.json"), "--input", os.path.join(tmp, "xt.npy"))
        check(r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1,
              f"fuzz regression {os.path.basename(f)}: exit {r.returncode}, {r.stderr.strip()}")
    r = run("--help")
    check(r.returncode == 0 and "qcal infer MODEL.onnx" in r.stdout, "--help")
    if len(sys.argv) > 2:  # docs/graph.md carries the op table of graph/ops.inc
        table = run("--list-ops").stdout
        doc = open(os.path.join(sys.argv[2], "docs", "graph.md")).read()
        rows = [ln for ln in table.splitlines() if ln.startswith("| ")]
        check(len(rows) > 50 and all(ln in doc for ln in rows),
              f"docs/graph.md lists all {len(rows) - 1} ops of --list-ops")
sys.exit(1 if fails else 0)
