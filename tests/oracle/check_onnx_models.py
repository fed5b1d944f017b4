"""Whole networks against the runtimes they come from: torchvision models
exported by torch (tests/oracle/onnx_zoo.py) run by `qcal infer`, by torch
itself and by ONNX Runtime on the same input. Output SQNR >= 80 dB against
both (float accumulation order is the only difference).
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
sys.exit(1 if failed else 0)
