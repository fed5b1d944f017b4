"""compare, export and report end to end, with files made by qcal and
worsened copies made here with h5py.
usage: check_reports.py QCAL_BINARY"""
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import h5py
import numpy as np

QCAL = sys.argv[1]
failures = []


def run(*args, env=None):
    r = subprocess.run([QCAL, *args], capture_output=True, text=True, env=env)
    return r.returncode, r.stdout, r.stderr


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def timing_file(path, name, samples):
    """A minimal results file holding only benchmark samples."""
    with h5py.File(path, "w") as f:
        f.attrs["schema_version"] = np.int64(1)
        g = f.create_group("samples")
        g["name"] = np.array([name], dtype=h5py.string_dtype())
        g["offset"] = np.array([0], dtype=np.int64)
        g["count"] = np.array([len(samples)], dtype=np.int64)
        f["samples_seconds"] = np.array(samples, dtype=np.float32)


with tempfile.TemporaryDirectory() as tmp:
    p = lambda n: os.path.join(tmp, n)
    x = np.random.default_rng(5).standard_normal((4, 300)).astype(np.float32)
    x[0, 0] = 2.5  # per-tensor max amax = 2.5 -> TRT scale 2.5/127 = 0x3ca14285
    x[np.abs(x) > 2.5] = 2.0
    np.save(p("x.npy"), x)
    rc, out, err = run("sweep", "--no-network", "--synthetic-size", "4096", "--bits", "4,8",
                       "-o", p("base.h5"), p("x.npy"))
    check(rc == 0, "sweep for the baseline: " + err.strip())

    # compare: identical
    rc, out, _ = run("compare", p("base.h5"), p("base.h5"))
    check(rc == 0 and "0 quality regression" in out, "identical files: exit 0")

    # compare: a worsened quality metric and a moved amax
    shutil.copy(p("base.h5"), p("worse.h5"))
    with h5py.File(p("worse.h5"), "r+") as f:
        s = f["results/sqnr_db"][()]
        s[3] -= 0.2
        f["results/sqnr_db"][...] = s
        a = f["results/amax"][()]
        a[7] *= 1 + 1e-5
        f["results/amax"][...] = a
    rc, out, _ = run("compare", p("base.h5"), p("worse.h5"))
    first = out.splitlines()[1] if len(out.splitlines()) > 1 else ""
    check(rc == 1 and "2 quality regression" in out, "worsened SQNR and amax: exit 1, 2 regressions")
    check("REGRESSION" in first, "worst row first")
    rc, out, _ = run("compare", p("base.h5"), p("worse.h5"), "--format", "json")
    check(rc == 1 and '"quality_regressions":2' in out.replace(" ", ""), "json format")
    rc, out, _ = run("compare", p("base.h5"), p("worse.h5"), "--format", "md")
    check(rc == 1 and out.startswith("| key | metric |"), "md format")
    # a thresholds file loosens the SQNR limit
    with open(p("loose.conf"), "w") as f:
        f.write("sqnr_db_drop = 0.5\namax_rel = 1e-3\n")
    rc, out, _ = run("compare", p("base.h5"), p("worse.h5"), "--thresholds", p("loose.conf"))
    check(rc == 0, "thresholds file applies")

    # compare: keys present in only one file
    rc, out, err = run("sweep", "--no-network", "--synthetic-size", "4096", "--bits", "8",
                       "--filter", "gaussian", "-o", p("fewer.h5"))
    rc, out, _ = run("compare", p("base.h5"), p("fewer.h5"))
    check("only in " + p("base.h5") in out and "synthetic/laplace" in out, "missing keys are listed")

    # compare: timings, slower with enough repetitions
    rng = np.random.default_rng(1)
    fast = list(1.0 + 0.01 * rng.standard_normal(12))
    slow = list(1.2 + 0.01 * rng.standard_normal(12))
    timing_file(p("t1.h5"), "gemm/cpu/f32/64x64x64x1", fast)
    timing_file(p("t2.h5"), "gemm/cpu/f32/64x64x64x1", slow)
    rc, out, _ = run("compare", p("t1.h5"), p("t2.h5"))
    check(rc == 1 and "1 performance regression" in out and "slower, p = " in out, "20% slower timing: regression")
    rc, out, _ = run("compare", p("t1.h5"), p("t2.h5"), "--perf", "warn")
    check(rc == 0 and "not gating" in out, "--perf warn does not fail")
    timing_file(p("t3.h5"), "gemm/cpu/f32/64x64x64x1", [x * 1.02 for x in fast])
    rc, out, _ = run("compare", p("t1.h5"), p("t3.h5"))
    check(rc == 0, "2% slower is below the minimum effect")
    timing_file(p("t4.h5"), "gemm/cpu/f32/64x64x64x1", slow[:5])
    rc, out, _ = run("compare", p("t1.h5"), p("t4.h5"))
    check("fewer than 9 repetitions" in out, "fewer than 9 repetitions warns")

    # export: the TensorRT cache line of the file tensor, against the hand value
    rc, out, err = run("export", p("base.h5"), "--method", "max", "--format", "trt-cache")
    want = "x: " + struct.pack(">f", np.float32(2.5) / np.float32(127)).hex()
    check(rc == 0 and out.startswith("TRT-8601-MinMaxCalibration\n") and want in out.splitlines(),
          "TensorRT cache: " + want + " (hand value 3ca14285)")
    check(want == "x: 3ca14285", "hand-computed hex agrees with numpy")
    rc, out, _ = run("export", p("base.h5"), "--method", "entropy", "--format", "onnx-scales", "--granularity", "per-channel")
    check(rc == 0 and '"y_zero_point"' in out and '"axis":0' in out.replace(" ", ""), "ONNX per-channel scales")
    rc, out, _ = run("export", p("base.h5"), "--method", "mse", "--format", "json", "-o", p("m.json"))
    check(rc == 0 and os.path.getsize(p("m.json")) > 0, "json export to a file")

    # report: every figure exists and is not empty
    rc, out, err = run("stream", "--sizes", "4K,64K", "-o", p("s.h5"))
    rc, out, err = run("gemm", "--engine", "cpu", "--no-network", "--sizes", "64,128", "-o", p("g.h5"))
    rc, out, err = run("report", p("base.h5"), p("g.h5"), p("s.h5"), "-o", p("rep"))
    check(rc == 0 and "index.html" in out, "report written: " + err.strip())
    names = os.listdir(p("rep")) if os.path.isdir(p("rep")) else []
    stems = {n[:-3] for n in names if n.endswith(".gp")}
    expected = {"heatmap_weights", "heatmap_activations", "granularity", "histograms", "tradeoff", "bits",
                "gemm", "roofline"}
    for e in sorted(expected - {"heatmap_weights", "heatmap_activations", "granularity"}):
        check(e in stems, "figure script " + e + ".gp")
    figs = [n for n in names if n.endswith(".png") or n.endswith(".svg")]
    check(len(figs) == 2 * (2 * 11 + 1 + 2 + 1), f"{len(figs)} figure files (PNG + SVG): 11 histograms, 11 trade-offs, bits, 2 gemm, roofline")
    check(all(os.path.getsize(os.path.join(p("rep"), n)) > 200 for n in figs), "every figure file is non-empty")
    html = open(p("rep/index.html")).read()
    check("<script" not in html and "roofline.svg" in html and "tradeoff_0.png" in html, "static HTML with figures")
    check(os.path.getsize(p("rep/summary.md")) > 100, "Markdown summary")

    # the architecture benchmark's table (scripts/bench-architectures.sh writes
    # it with h5py): drawn with its geometric means; a negative time refused
    def arch_file(path, fp32_s):
        with h5py.File(path, "w") as f:
            f.attrs["schema_version"] = np.int64(4)
            g = f.create_group("architectures")
            s = h5py.string_dtype("utf-8")
            g.create_dataset("model", data=["resnet18", "vit_b_16"], dtype=s)
            g.create_dataset("family", data=["ResNet", "ViT"], dtype=s)
            g["threads"] = np.array([2, 2], np.int64)
            for k, v in (("fp32_seconds", fp32_s), ("ort_fp32_seconds", [0.01, 0.1]),
                         ("fp32_vs_ort", [2.0, 0.5]), ("int8_seconds", [0.005, 0.1]),
                         ("int8_speedup", [4.0, 1.0]), ("int8_vs_qdq_db", [40.0, 35.0])):
                g[k] = np.array(v, np.float64)
    arch_file(p("arch.h5"), [0.02, 0.05])
    rc, out, err = run("report", p("arch.h5"), "-o", p("rep_arch"))
    md = open(p("rep_arch/summary.md")).read() if rc == 0 else ""
    check(rc == 0 and "| resnet18 | ResNet | 2 | 20.00 | 10.00 | 2.00x | 5.00 | 4.00x | 40.0 |" in md
          and "| geometric mean | | | | | 1.00x | | 2.00x | |" in md
          and os.path.exists(p("rep_arch/architectures.png")),
          "report draws /architectures: rows, geometric means (1.00x, 2.00x), the figure")
    arch_file(p("arch_bad.h5"), [0.02, -1.0])
    rc, out, err = run("report", p("arch_bad.h5"), "-o", p("rep_arch_bad"))
    check(rc == 2 and "arch_bad.h5" in err and err.count("\n") == 1
          and not os.path.exists(p("rep_arch_bad")),
          "a negative time in /architectures -> exit 2 naming the file, no report")

    # the QAT tables (qcal qat): a network name from the file reaches HTML,
    # Markdown, gnuplot strings and data files only escaped
    evil = "n'; system('touch PWNED')\n\"<script>|x"
    with h5py.File(p("qat.h5"), "w") as f:
        f.attrs["schema_version"] = np.int64(5)
        s = h5py.string_dtype("utf-8")
        g = f.create_group("qat")
        rows = [("fp32", "float", "float", 32, 32, 90.0, 0), ("ptq", "max", "per-channel", 4, 4, 70.0, 1),
                ("qat", "max", "per-channel", 4, 4, 88.0, 0)]
        g.create_dataset("net", data=[evil] * 3, dtype=s)
        for k, i in (("stage", 0), ("method", 1), ("granularity", 2)):
            g.create_dataset(k, data=[r[i] for r in rows], dtype=s)
        g["bits"] = np.array([r[3] for r in rows], np.int64)
        g["act_bits"] = np.array([r[4] for r in rows], np.int64)
        g["top1"] = np.array([r[5] for r in rows], np.float64)
        g["val_top1"] = np.array([r[5] for r in rows], np.float64)
        g["best"] = np.array([r[6] for r in rows], np.int64)
        for k in ("learn_amax", "threads", "batch"):
            g[k] = np.array([0, 0, 0] if k == "learn_amax" else [2, 2, 2], np.int64)
        for k in ("epochs", "seconds", "epoch_seconds"):
            g[k] = np.array([1.0, 0.5, 1.0], np.float64)
        c = f.create_group("qat_curves")
        c.create_dataset("net", data=[evil] * 2, dtype=s)
        c.create_dataset("run", data=["fp32", evil], dtype=s)
        for k, v in (("epoch", [1.0, 1.0]), ("train_loss", [0.5, 0.4]), ("val_top1", [90.0, np.nan]),
                     ("lr", [0.1, 0.001])):
            c[k] = np.array(v, np.float64)
    rc, out, err = run("report", p("qat.h5"), "-o", p("rep_qat"))
    html = open(p("rep_qat/index.html")).read() if rc == 0 else ""
    md = open(p("rep_qat/summary.md")).read() if rc == 0 else ""
    check(rc == 0 and "<script" not in html and "88.00%" in md
          and os.path.exists(p("rep_qat/qat_accuracy_0.png"))
          and os.path.exists(p("rep_qat/qat_curves_0.png"))
          and not os.path.exists(p("rep_qat/PWNED")) and not os.path.exists("PWNED"),
          f"report draws /qat and /qat_curves with a hostile network name escaped ({err.strip()})")

    # bad input: missing, foreign, schema mismatch, no gnuplot
    with h5py.File(p("foreign.h5"), "w") as f:
        f["x"] = np.zeros(3)
    shutil.copy(p("base.h5"), p("v2.h5"))
    with h5py.File(p("v2.h5"), "r+") as f:
        f.attrs["schema_version"] = np.int64(1000)  # newer than this qcal
    for args, needle in [(("compare", p("nope.h5"), p("base.h5")), "cannot open"),
                         (("compare", p("foreign.h5"), p("base.h5")), "not a qcal results file"),
                         (("export", p("v2.h5"), "--method", "max"), "schema version 1000"),
                         (("report", p("x.npy")), "not an HDF5 file")]:
        rc, out, err = run(*args)
        check(rc == 2 and needle in err and err.count("\n") == 1, f"{args[0]} bad input -> exit 2: {needle}")
    env = dict(os.environ, PATH="/nonexistent")
    rc, out, err = run("report", p("base.h5"), "-o", p("rep2"), env=env)
    check(rc == 2 and "gnuplot is not installed" in err, "gnuplot missing -> exit 2")

print(f"{0 if failures else 1} passed, {1 if failures else 0} failed")
sys.exit(1 if failures else 0)
