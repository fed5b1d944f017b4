"""Whole networks against the runtimes they come from: torchvision models
exported by torch (tests/oracle/onnx_zoo.py) run by `qcal infer`, by torch
itself and by ONNX Runtime on the same input. Output SQNR >= 80 dB against
both (float accumulation order is the only difference).
QCAL_ONNX_MODELS="resnet18 vit_b_16" picks other torchvision models.
usage: check_onnx_models.py QCAL SOURCE_ROOT"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import onnx_zoo  # noqa: E402

qcal, root = sys.argv[1], sys.argv[2]
peers = onnx_zoo.peers(root)
failed = 0
with tempfile.TemporaryDirectory() as tmp:
    print(f"{'model':20} {'vs torch dB':>12} {'vs ORT dB':>10} {'ORT vs torch':>13}")
    for name in onnx_zoo.MODELS:
        model, x, y_torch = onnx_zoo.export(name)
        q, _ = onnx_zoo.qcal_run(qcal, model, x, os.path.join(tmp, name + ".npz"))
        o, _ = onnx_zoo.ort_run(root, peers, model, x, os.path.join(tmp, name + "_ort"))
        import numpy as np
        t = np.load(y_torch)
        s_t, s_o, s_ot = onnx_zoo.sqnr_db(t, q[0]), onnx_zoo.sqnr_db(o[0], q[0]), \
            onnx_zoo.sqnr_db(t, o[0])
        ok = q[0].shape == t.shape and s_t >= 80 and s_o >= 80
        failed += not ok
        print(f"{name:20} {s_t:12.1f} {s_o:10.1f} {s_ot:13.1f} {'ok' if ok else 'FAIL'}")

# A Q/DQ model written with Debian's python3-onnx helpers, as other tools
# write them: per-tensor uint8 activations, per-channel int8 weights (axis 0),
# on a Conv -> Relu -> Conv net; ONNX Runtime executes the Q/DQ nodes as
# written (graph optimizations off, else it would switch to its own INT8
# kernels). Both round half to even; the residual difference is a rounding
# tie flipped by float accumulation order.
import numpy as np  # noqa: E402
import onnx  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

rng = np.random.default_rng(5)
w1 = rng.standard_normal((16, 3, 3, 3)).astype(np.float32) * rng.uniform(0.1, 2, (16, 1, 1, 1)).astype(np.float32)
w2 = rng.standard_normal((8, 16, 1, 1)).astype(np.float32) * 0.3


def qw(w, name):
    s = (np.abs(w).reshape(w.shape[0], -1).max(1) / 127).astype(np.float32)
    q = np.clip(np.round(w / s[:, None, None, None]), -127, 127).astype(np.int8)
    return [numpy_helper.from_array(q, name + "_q"), numpy_helper.from_array(s, name + "_s"),
            numpy_helper.from_array(np.zeros(w.shape[0], np.int8), name + "_z")]


inits = qw(w1, "w1") + qw(w2, "w2") + [
    numpy_helper.from_array(np.array(0.02, np.float32), "sa"),
    numpy_helper.from_array(np.array(128, np.uint8), "za"),
    numpy_helper.from_array(np.array(0.01, np.float32), "sb"),
    numpy_helper.from_array(np.array(0, np.uint8), "zb")]
nodes = [
    helper.make_node("QuantizeLinear", ["x", "sa", "za"], ["xq"]),
    helper.make_node("DequantizeLinear", ["xq", "sa", "za"], ["xd"]),
    helper.make_node("DequantizeLinear", ["w1_q", "w1_s", "w1_z"], ["w1d"], axis=0),
    helper.make_node("Conv", ["xd", "w1d"], ["c1"], pads=[1, 1, 1, 1]),
    helper.make_node("Relu", ["c1"], ["r1"]),
    helper.make_node("QuantizeLinear", ["r1", "sb", "zb"], ["rq"]),
    helper.make_node("DequantizeLinear", ["rq", "sb", "zb"], ["rd"]),
    helper.make_node("DequantizeLinear", ["w2_q", "w2_s", "w2_z"], ["w2d"], axis=0),
    helper.make_node("Conv", ["rd", "w2d"], ["y"])]
g = helper.make_graph(nodes, "qdq", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                   [1, 3, 32, 32])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 32, 32])], inits)
with tempfile.TemporaryDirectory() as tmp:
    mp = os.path.join(tmp, "qdq.onnx")
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(m)
    onnx.save(m, mp)
    xp = os.path.join(tmp, "x.npy")
    np.save(xp, rng.uniform(-2, 2, (1, 3, 32, 32)).astype(np.float32))
    q, _ = onnx_zoo.qcal_run(qcal, mp, xp, os.path.join(tmp, "q.npz"))
    import json
    import subprocess
    env = dict(os.environ, QCAL_PEERS=peers)
    subprocess.run(["node", os.path.join(root, "tests/oracle/ort_run.js"), mp, xp,
                    os.path.join(tmp, "o"), "2", "1", "disabled"], env=env, check=True,
                   capture_output=True)
    o = np.load(os.path.join(tmp, "o0.npy"))
    s = onnx_zoo.sqnr_db(o, q[0])
    ok = s >= 60
    failed += not ok
    print(f"{'qdq (python3-onnx)':20} {'':12} {s:10.1f} {'':13} {'ok' if ok else 'FAIL'}")
sys.exit(1 if failed else 0)
