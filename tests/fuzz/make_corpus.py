"""Write the seed corpus of the fuzz targets (tests/fuzz/corpus/<target>/):
small valid files of every format, made with NumPy, h5py, zipfile and qcal
itself. usage: make_corpus.py QCAL_BINARY OUT_DIR"""
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import zipfile
import zlib

import numpy as np

QCAL, OUT = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(3)


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def npy(a):
    b = io.BytesIO()
    np.save(b, a)
    return b.getvalue()


a = rng.standard_normal((3, 5)).astype(np.float32)
put("npy", "f32.npy", npy(a))
put("npy", "f16.npy", npy(a.astype(np.float16)))
put("npy", "f64_fortran.npy", npy(np.asfortranarray(a.astype(">f8"))))

for comp, name in ((zipfile.ZIP_STORED, "stored.npz"), (zipfile.ZIP_DEFLATED, "deflated.npz")):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", comp) as z:
        z.writestr("w.npy", npy(a))
        z.writestr("b.npy", npy(a[0]))
    put("npz", name, b.getvalue())

hdr = json.dumps({"w": {"dtype": "F32", "shape": [3, 5], "data_offsets": [0, 60]},
                  "h": {"dtype": "F16", "shape": [5], "data_offsets": [60, 70]},
                  "__metadata__": {"format": "pt"}}).encode()
put("safetensors", "two.safetensors",
    struct.pack("<Q", len(hdr)) + hdr + a.tobytes() + a[0].astype(np.float16).tobytes())

model = {"format": "graph-model", "modelTopology": {"node": [
    {"name": "input", "op": "Placeholder", "attr": {"dtype": {"type": "DT_FLOAT"}}},
    {"name": "c/weights", "op": "Const", "attr": {"dtype": {"type": "DT_FLOAT"}}},
    {"name": "c/bias", "op": "Const", "attr": {"dtype": {"type": "DT_FLOAT"}}},
    {"name": "c/Conv2D", "op": "_FusedConv2D", "input": ["input", "c/weights", "c/bias"],
     "attr": {"strides": {"list": {"i": ["1", "1", "1", "1"]}}, "padding": {"s": "U0FNRQ=="},
              "fused_ops": {"list": {"s": ["Qmlhc0FkZA==", "UmVsdTY="]}}}}]},
    "weightsManifest": [{"paths": ["w.bin"], "weights": [
        {"name": "c/weights", "shape": [3, 3, 3, 4], "dtype": "float32"},
        {"name": "c/bias", "shape": [4], "dtype": "float32"}]}]}
put("tfjs", "conv.json", json.dumps(model).encode())

put("thresholds", "ci.conf", b"# CI gate\nsqnr_db_drop = 0.05\namax_rel = 1e-6\nalpha = 0.05\n")
put("thresholds", "bad.conf", b"sqnr_db_drop = 0.05 x\nunknown = 1\n")


def png(w, h):
    raw = b"".join(b"\0" + bytes(rng.integers(0, 255, 3 * w, dtype=np.uint8)) for _ in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


put("image", "rgb.png", png(7, 5))


def idx(dims, data):
    return bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + bytes(data)


import gzip  # noqa: E402
put("idx", "images.idx", idx([3, 4, 4], rng.integers(0, 255, 48, dtype=np.uint8)))
put("idx", "labels.idx", idx([5], [0, 3, 9, 1, 7]))
put("idx", "images.gz", gzip.compress(idx([2, 3, 3], range(18)), mtime=0))
put("image", "gray.pgm", b"P5\n4 3\n255\n" + bytes(range(12)))

with tempfile.TemporaryDirectory() as tmp:
    np.save(os.path.join(tmp, "x.npy"), a)
    r = subprocess.run([QCAL, "sweep", "--no-network", "--no-synthetic", "-o",
                        os.path.join(tmp, "r.h5"), os.path.join(tmp, "x.npy")],
                       capture_output=True, text=True)
    if r.returncode:
        sys.exit("qcal sweep failed: " + r.stderr)
    with open(os.path.join(tmp, "r.h5"), "rb") as f:
        put("results", "sweep.h5", f.read())
print("corpus written to", OUT)


# ONNX models: a conv net, shape sub-graph folding, Q/DQ, broadcasting
import onnx  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def onnx_model(nodes, inits, ins, outs, opset=13):
    g = helper.make_graph(nodes, "g", ins, outs, inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()


f32 = TensorProto.FLOAT
x4 = helper.make_tensor_value_info("x", f32, ["N", 3, 8, 8])
y = helper.make_tensor_value_info("y", f32, None)
w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
put("onnx", "conv.onnx", onnx_model(
    [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], strides=[2, 2]),
     helper.make_node("Relu", ["c"], ["r"]), helper.make_node("MaxPool", ["r"], ["m"], kernel_shape=[2, 2]),
     helper.make_node("GlobalAveragePool", ["m"], ["y"])], [w], [x4], [y]))
shp = numpy_helper.from_array(np.array([0, -1], np.int64), "shp")
put("onnx", "reshape.onnx", onnx_model(
    [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Reshape", ["x", "shp"], ["f"]),
     helper.make_node("Softmax", ["f"], ["y"], axis=-1)], [shp], [x4], [y]))
sc = numpy_helper.from_array(np.array(0.05, np.float32), "sc")
zp = numpy_helper.from_array(np.array(3, np.int8), "zp")
put("onnx", "qdq.onnx", onnx_model(
    [helper.make_node("QuantizeLinear", ["x", "sc", "zp"], ["q"]),
     helper.make_node("DequantizeLinear", ["q", "sc", "zp"], ["d"]),
     helper.make_node("Mul", ["d", "x"], ["y"])], [sc, zp], [x4], [y]))
# Swin's attention-mask ops: ScatterND, Mod, Not, Equal on floats, Dropout
# in training mode with ratio 0
x3 = helper.make_tensor_value_info("x", f32, [4, 1, 6])
ix = numpy_helper.from_array(np.array([[0], [2]], np.int64), "ix")
up = numpy_helper.from_array(np.ones((2, 1, 6), np.float32), "up")
md = numpy_helper.from_array(np.array(3.0, np.float32), "md")
r0 = numpy_helper.from_array(np.array(0.0, np.float32), "r0")
tm = numpy_helper.from_array(np.array(True), "tm")
put("onnx", "mask.onnx", onnx_model(
    [helper.make_node("ScatterND", ["x", "ix", "up"], ["s"]),
     helper.make_node("Mod", ["s", "md"], ["m"], fmod=1),
     helper.make_node("Equal", ["m", "x"], ["e"]), helper.make_node("Not", ["e"], ["n"]),
     helper.make_node("Where", ["n", "m", "x"], ["w"]),
     helper.make_node("Dropout", ["w", "r0", "tm"], ["y"])], [ix, up, md, r0, tm], [x3], [y]))

# a TF.js graph model for the graph-IR importer (w.bin: 1024 zero bytes, as
# the fuzz target writes it)
import base64  # noqa: E402
s64 = lambda t: base64.b64encode(t.encode()).decode()  # noqa: E731
graph_model = {"format": "graph-model", "modelTopology": {"node": [
    {"name": "x", "op": "Placeholder", "attr": {"dtype": {"type": "DT_FLOAT"}, "shape": {"shape": {
        "dim": [{"size": "1"}, {"size": "4"}, {"size": "5"}, {"size": "4"}]}}}},
    {"name": "w", "op": "Const", "attr": {"dtype": {"type": "DT_FLOAT"}}},
    {"name": "b", "op": "Const", "attr": {"dtype": {"type": "DT_FLOAT"}}},
    {"name": "axes", "op": "Const", "attr": {"dtype": {"type": "DT_INT32"}}},
    {"name": "conv", "op": "_FusedConv2D", "input": ["x", "w", "b"], "attr": {
        "strides": {"list": {"i": ["1", "1", "1", "1"]}}, "padding": {"s": s64("SAME")},
        "data_format": {"s": s64("NHWC")},
        "fused_ops": {"list": {"s": [s64("BiasAdd"), s64("Relu6")]}}, "num_args": {"i": "1"}}},
    {"name": "pool", "op": "MaxPool", "input": ["conv"], "attr": {
        "ksize": {"list": {"i": ["1", "2", "2", "1"]}}, "strides": {"list": {"i": ["1", "2", "2", "1"]}},
        "padding": {"s": s64("VALID")}}},
    {"name": "mean", "op": "Mean", "input": ["pool", "axes"], "attr": {"keep_dims": {"b": False}}},
    {"name": "out", "op": "Softmax", "input": ["mean"]}]},
    "weightsManifest": [{"paths": ["w.bin"], "weights": [
        {"name": "w", "shape": [1, 1, 4, 48], "dtype": "float32"},
        {"name": "b", "shape": [48], "dtype": "float32",
         "quantization": {"dtype": "float16", "original_dtype": "float32"}},
        {"name": "axes", "shape": [2], "dtype": "int32"},
        {"name": "pad", "shape": [38], "dtype": "float32"}]}]}
put("tfjs", "graph.json", json.dumps(graph_model).encode())
