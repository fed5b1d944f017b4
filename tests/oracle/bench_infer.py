"""FP32 inference latency of `qcal infer` against ONNX Runtime (all graph
optimizations on, the same thread count, the same input), measured in the
same run: rounds alternate between the two so that load on a shared machine
hits both; each side reports its median over REPEAT runs after a warm-up,
and the table gives the median over rounds and the ratio.
usage: bench_infer.py QCAL SOURCE_ROOT [THREADS] [REPEAT] [ROUNDS]"""
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import onnx_zoo  # noqa: E402

qcal, root = sys.argv[1], sys.argv[2]
threads = int(sys.argv[3]) if len(sys.argv) > 3 else 2
repeat = int(sys.argv[4]) if len(sys.argv) > 4 else 30
rounds = int(sys.argv[5]) if len(sys.argv) > 5 else 3
peers = onnx_zoo.peers(root)
load = os.getloadavg()[0]
print(f"latency at 1x3x224x224, {threads} threads, median of {repeat} runs x {rounds} rounds "
      f"(load average {load:.2f} at start)")
print(f"{'model':20} {'qcal ms':>9} {'ORT ms':>9} {'qcal/ORT':>9}")
worst = 0
with tempfile.TemporaryDirectory() as tmp:
    for name in ["resnet18", "mobilenet_v2", "efficientnet_b0", "mobilenet_v3_small"]:
        model, x, _ = onnx_zoo.export(name)
        q, o = [], []
        for _ in range(rounds):
            q.append(onnx_zoo.qcal_run(qcal, model, x, os.path.join(tmp, "q.npz"), threads,
                                       repeat)[1])
            o.append(onnx_zoo.ort_run(root, peers, model, x, os.path.join(tmp, "o"), threads,
                                      repeat)[1])
        qm, om = float(np.median(q)), float(np.median(o))
        print(f"{name:20} {qm:9.2f} {om:9.2f} {qm / om:9.2f}")
print(f"(load average {os.getloadavg()[0]:.2f} at end)")
