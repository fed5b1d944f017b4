"""INT8 against FP32 whole-network latency, qcal beside ONNX Runtime, measured
in the same run: for each torchvision network (Debian torch export, random
weights), `qcal quantize` writes the Q/DQ model; then rounds alternate
between qcal bench-model (engines fp32 and int8 on the Q/DQ file) and ONNX
Runtime (npm onnxruntime-node, graph optimizations on: FP32 on the float
model, its own INT8 execution of the same Q/DQ model), so that load on a
shared machine hits all four. Each side reports its median over REPEAT runs
after warm-up; the table gives the median over rounds. It also counts the
convolutions ONNX Runtime turned into QLinearConv (integer) in the graph it
ran: the rest ran in float between its QuantizeLinear / DequantizeLinear
nodes, which is what "ORT int8" measures on such a model.
usage: bench_int8.py QCAL SOURCE_ROOT [THREADS] [REPEAT] [ROUNDS]"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx

sys.path.insert(0, os.path.dirname(__file__))
import onnx_zoo  # noqa: E402

qcal, root = sys.argv[1], sys.argv[2]
threads = int(sys.argv[3]) if len(sys.argv) > 3 else 2
repeat = int(sys.argv[4]) if len(sys.argv) > 4 else 30
rounds = int(sys.argv[5]) if len(sys.argv) > 5 else 3
nets = os.environ.get("QCAL_BENCH_MODELS", "resnet18 mobilenet_v2").split()
peers = onnx_zoo.peers(root)
images = os.path.join(subprocess.run([os.path.join(root, "scripts/fetch-data.sh")], check=True,
                                     capture_output=True, text=True).stdout.strip(), "images")
print(f"latency at 1x3x224x224, {threads} threads, median of {repeat} runs x {rounds} rounds "
      f"(load average {os.getloadavg()[0]:.2f} at start)")
print(f"{'model':14} {'qcal fp32':>10} {'qcal int8':>10} {'speed-up':>9} {'ORT fp32':>9} "
      f"{'ORT int8':>9} {'ORT x':>6} {'qcal/ORT int8':>14}")
qconv = {}
with tempfile.TemporaryDirectory() as tmp:
    for name in nets:
        model, x, _ = onnx_zoo.export(name)
        qdq = os.path.join(tmp, name + ".qdq.onnx")
        subprocess.run([qcal, "quantize", model, "--images", images, "--calib", "8", "--mean",
                        "0.485,0.456,0.406", "--std", "0.229,0.224,0.225", "-o", qdq],
                       check=True, capture_output=True)
        q32, q8, o32, o8 = [], [], [], []
        for r in range(rounds):
            js = os.path.join(tmp, "bm.json")
            subprocess.run([qcal, "bench-model", qdq, "--engines", "fp32,int8", "--threads",
                            str(threads), "--reps", str(repeat), "--rounds", "1", "--input", x,
                            "--json", js], check=True, capture_output=True)
            b = json.load(open(js))["benchmarks"]
            med = {e["run_name"].split("/")[-1]: e["real_time"] / 1e6 for e in b
                   if e.get("aggregate_name") == "median"}
            q32.append(med["fp32"])
            q8.append(med["int8"])
            o32.append(onnx_zoo.ort_run(root, peers, model, x, os.path.join(tmp, "o"), threads,
                                        repeat)[1])
            opt = os.path.join(tmp, name + ".ort.onnx") if r == 0 else None
            o8.append(onnx_zoo.ort_run(root, peers, qdq, x, os.path.join(tmp, "p"), threads,
                                       repeat, optimized=opt)[1])
            if opt:
                ops = [nd.op_type for nd in onnx.load(opt).graph.node]
                qconv[name] = (ops.count("QLinearConv"),
                               sum(ops.count(k) for k in ("QLinearConv", "Conv", "FusedConv",
                                                          "NchwcConv")))
        a, b_, c, d = (float(np.median(v)) for v in (q32, q8, o32, o8))
        print(f"{name:14} {a:10.2f} {b_:10.2f} {a / b_:8.2f}x {c:9.2f} {d:9.2f} {c / d:5.2f}x "
              f"{b_ / d:14.2f}", flush=True)
print(f"(load average {os.getloadavg()[0]:.2f} at end)")
for name, (k, n) in qconv.items():
    print(f"ORT int8 on {name}: {k} of {n} convolutions as QLinearConv (integer); the rest in "
          "float between its Q/DQ nodes")
