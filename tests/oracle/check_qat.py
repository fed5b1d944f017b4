#!/usr/bin/env python3
"""`qcal qat --quick` end to end: the qat tables (h5py), the FP32 and QAT
models it writes run by ONNX Runtime (npm onnxruntime-node, from
tests/oracle/peers.sh) on the same test images give the same top-1 as qcal
(within 0.1 points), a classifier exported by torch.onnx trains through
`qcal qat MODEL.onnx`, and bad input gets one line and exit status 2.

  check_qat.py QCAL_BIN SOURCE_ROOT"""
import gzip, os, sys, tempfile

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oracle  # noqa: E402
from oracle import run  # noqa: E402

check = oracle.Checks()
DATA = "/usr/share/datasets/fashion-mnist"






def idx(path):
    with gzip.open(path) as f:
        b = f.read()
    nd = b[3]
    dims = [int.from_bytes(b[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(b, np.uint8, offset=4 + 4 * nd).reshape(dims)


def table(f, name):
    g = f[name]
    return {k: [v.decode() if isinstance(v, bytes) else v for v in g[k][:]] for k in g}


def ort_top1(root, peers, model, x, labels, tmp, opt):
    env = dict(os.environ, QCAL_PEERS=peers)
    prefix = os.path.join(tmp, "ort_out")
    r = run("node", os.path.join(root, "tests/oracle/ort_run.js"), model, x, prefix, 2, 1, opt,
            env=env)
    if r.returncode:
        raise RuntimeError(r.stderr.strip())
    logits = np.load(prefix + "0.npy")
    return 100.0 * float((logits.argmax(1) == labels).mean())


# Under the sanitizers (QCAL_ORACLE_QUICK, .ci/run) a smaller run: the same
# checks on 1024 training and 400 test images, W8A8 only.
QUICK = os.environ.get("QCAL_ORACLE_QUICK") == "1"
SIZE = ["--train-images", "1024", "--test-images", "400", "--val", "400", "--calib", "256",
        "--bits", "8", "--qat-epochs", "0.25"] if QUICK else []
NTEST = 400 if QUICK else 2000
BITS = (8,) if QUICK else (8, 4)


def main():
    qcal, root = sys.argv[1], sys.argv[2]
    peers = run("bash", os.path.join(root, "tests/oracle/peers.sh")).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "qat.h5")
        r = run(qcal, "qat", "--quick", *SIZE, "--threads", "2", "--save", tmp, "-o", out)
        check(r.returncode == 0, f"qcal qat --quick: exit {r.returncode} {r.stderr.strip()[-300:]}")
        if r.returncode:
            sys.exit(1)
        print(r.stdout.split("\n\n")[-2] if "\n\n" in r.stdout else r.stdout[-800:])
        with h5py.File(out) as f:
            q = table(f, "qat")
            c = table(f, "qat_curves")
        rows = list(zip(q["net"], q["stage"], q["method"], q["granularity"], q["bits"],
                        q["act_bits"], q["top1"], q["best"]))
        for net in ("cnn", "mobilenet"):
            mine = [x for x in rows if x[0] == net]
            fp = [x[6] for x in mine if x[1] == "fp32"]
            ptq = [x for x in mine if x[1] == "ptq"]
            qat = [x for x in mine if x[1] == "qat"]
            want = (len(BITS) * 2 * 4, 2 + (len(BITS) - 1))  # W8A8: both granularities
            check(len(fp) == 1 and (len(ptq), len(qat)) == want,
                  f"{net}: 1 fp32, {want[0]} ptq and {want[1]} qat rows ({len(fp)}, {len(ptq)}, "
                  f"{len(qat)})")
            for b in BITS:
                for g in ("per-tensor", "per-channel"):
                    best = [x for x in ptq if x[4] == b and x[3] == g and x[7] == 1]
                    check(len(best) == 1, f"{net} W{b}A8 {g}: one best calibration")
            best8 = max(x[6] for x in ptq if x[4] == 8 and x[3] == "per-channel")
            check(fp and best8 >= fp[0] - 1.5,
                  f"{net}: W8A8 per-channel PTQ {best8:.2f}% within 1.5 points of FP32 {fp[0]:.2f}%")
            check(all(0 <= x[6] <= 100 for x in mine), f"{net}: top-1 in 0..100")
            curve = [e for n, e in zip(c["net"], c["epoch"]) if n == net]
            check(len(curve) >= 3, f"{net}: {len(curve)} training-curve points")
        # ONNX Runtime on the written models, the same first test images
        imgs = idx(os.path.join(DATA, "t10k-images-idx3-ubyte.gz"))[:NTEST]
        labels = idx(os.path.join(DATA, "t10k-labels-idx1-ubyte.gz"))[:NTEST]
        x = ((imgs.astype(np.float32) / np.float32(255) - np.float32(0.2860)) / np.float32(0.3530))
        xpath = os.path.join(tmp, "x.npy")
        np.save(xpath, x.reshape(-1, 1, 28, 28).astype(np.float32))
        for net in ("cnn", "mobilenet"):
            for stage, gran, fname in (("fp32", "float", f"{net}-fp32.onnx"),
                                       ("qat", "per-channel", f"{net}-qat-w8a8-per-channel.onnx"),
                                       ("qat", "per-tensor", f"{net}-qat-w8a8-per-tensor.onnx")):
                mine = [x[6] for x in rows if x[0] == net and x[1] == stage and x[3] == gran
                        and x[4] in (8, 32)]
                # Q/DQ as written (float quantize-dequantize, ONNX's semantics), and
                # ONNX Runtime's own int8 kernels (graph optimizations on), which
                # requantize in integers and may flip an image or two
                # (0.25 points is 5 of 2000 images)
                for opt, tol in (("disabled", 0.1), ("all", 0.25 if not QUICK else 0.5)):
                    try:
                        o = ort_top1(root, peers, os.path.join(tmp, fname), xpath, labels, tmp, opt)
                    except RuntimeError as e:
                        check(False, f"{fname}: ONNX Runtime: {e}")
                        continue
                    check(mine and abs(o - mine[0]) <= tol + 1e-9,
                          f"{fname}: ONNX Runtime ({opt} optimizations) top-1 {o:.2f}% vs qcal "
                          f"{mine[0]:.2f}% (within {tol} on {NTEST} images)")
        # a classifier exported by torch.onnx, trained by `qcal qat MODEL.onnx`
        sys.path.insert(0, os.path.join(root, "tests/oracle"))
        import torch
        from qat_nets import NETS
        torch.manual_seed(0)
        m = NETS["cnn"]().eval()
        mpath = os.path.join(tmp, "torch_cnn.onnx")
        torch.onnx.export(m, torch.zeros(1, 1, 28, 28), mpath, opset_version=13,
                          input_names=["image"], output_names=["logits"],
                          dynamic_axes={"image": {0: "n"}, "logits": {0: "n"}})
        o2 = os.path.join(tmp, "m.h5")
        r = run(qcal, "qat", mpath, "--epochs", "1", "--quick", "--bits", "8", "--qat-epochs",
                "0.25", "--threads", "2", *SIZE[:8], "-o", o2)
        check(r.returncode == 0, f"qcal qat torch_cnn.onnx: exit {r.returncode} {r.stderr.strip()}")
        if r.returncode == 0:
            with h5py.File(o2) as f:
                t = table(f, "qat")
            fp = [a for a, s in zip(t["top1"], t["stage"]) if s == "fp32"]
            floor = 20 if QUICK else 70
            check(fp and fp[0] > floor,
                  f"torch_cnn.onnx: one epoch: {fp[0]:.2f}% > {floor}% (chance is 10%)")
        # bad input: one line on stderr, exit status 2, no results file
        bad = os.path.join(tmp, "bad")
        os.mkdir(bad)
        for n in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                  "t10k-labels-idx1-ubyte"):
            with open(os.path.join(bad, n), "wb") as f:
                f.write(b"\x00\x00\x08\x03\x00\x00\x00\x05\x00\x00\x00\x1c\x00\x00\x00\x1c\x00")
        cases = [(["--data", bad], "truncated"), (["--data", os.path.join(tmp, "none")], "no train-images"),
                 (["--bits", "9"], "--bits"), (["--net", "resnet"], "not a network"),
                 (["--batch", "0"], "batch")]
        for args, says in cases:
            o3 = os.path.join(tmp, "bad.h5")
            r = run(qcal, "qat", *args, "--quick", "-o", o3)
            lines = r.stderr.strip().split("\n")
            check(r.returncode == 2 and len(lines) == 1 and says in lines[0] and not os.path.exists(o3),
                  f"qat {' '.join(args)}: exit {r.returncode}, '{lines[-1]}'")
    check.finish()


if __name__ == "__main__":
    main()
