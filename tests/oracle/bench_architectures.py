"""The architecture benchmark: every family of torchvision's classifiers
(tests/oracle/arch_zoo.py: at least 20 networks, weights seeded, BatchNorm
statistics measured on the photos), each quantized by `qcal quantize`, then
run on the three engines.

Quick mode (CI, --quick): the three engines run under the ASan+UBSan build
(--asan BINARY), each several times on the grouped-convolution networks
(RegNet, ResNeXt, ShuffleNet), once on the others; every run must exit 0
with finite outputs, and the fp32 engine must agree with torch's own output
on the same photo.

Full mode: FP32 `qcal infer` against ONNX Runtime (all graph optimizations,
the same threads) and INT8 against FP32 on the Q/DQ model, in alternating
rounds, medians; one table printed and written to HDF5 (-o, one dataset per
column with a units attribute).

usage: bench_architectures.py QCAL SOURCE_ROOT IMAGES [--quick] [--asan QCAL_ASAN]
       [--networks a,b,...] [--threads N] [--repeat R] [--rounds K] [-o FILE.h5]"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import arch_zoo  # noqa: E402
import onnx_zoo  # noqa: E402

GROUPED = {"regnet_x_400mf", "regnet_y_400mf", "resnext50_32x4d", "shufflenet_v2_x0_5"}
ENGINES = ("fp32", "qdq", "int8")

ap = argparse.ArgumentParser()
ap.add_argument("qcal")
ap.add_argument("root")
ap.add_argument("images")
ap.add_argument("--quick", action="store_true")
ap.add_argument("--asan")
ap.add_argument("--networks", default=os.environ.get("QCAL_ARCH_MODELS", ""))
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--repeat", type=int, default=10)
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("-o", "--output")
a = ap.parse_args()
nets = [n for n in a.networks.replace(",", " ").split()] or [n for n, _, _ in arch_zoo.ARCHS]
unknown = [n for n in nets if n not in arch_zoo.FAMILY]
if unknown:
    sys.exit("bench_architectures: unknown networks: " + ", ".join(unknown))
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def sqnr_db(ref, test):
    ref, test = np.asarray(ref, np.float64).ravel(), np.asarray(test, np.float64).ravel()
    err = np.sum((ref - test) ** 2)
    return float("inf") if err == 0 else 10 * np.log10(np.sum(ref ** 2) / err)


def infer(binary, model, x, engine, out, repeat=1, env=None):
    r = subprocess.run([binary, "infer", model, "--input", x, "--engine", engine, "-o", out,
                        "--threads", str(a.threads), "--repeat", str(repeat)],
                       capture_output=True, text=True, env=env, timeout=1800)
    info = json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else None
    return r, info


def quantize(model, out, tmp):
    size = str(arch_zoo.SIZE[os.path.basename(model)[:-5]])
    r = subprocess.run([a.qcal, "quantize", model, "--images", a.images, "--calib", "8",
                        "--input-size", size, "--mean", ",".join(map(str, arch_zoo.MEAN)),
                        "--std", ",".join(map(str, arch_zoo.STD)), "-o", out],
                       capture_output=True, text=True, cwd=tmp, timeout=1800)
    return r


def write_h5(path, rows):
    """The table /architectures of the results schema (include/qcal/schema.inc,
    docs/results.md) with the provenance qcal's own writers give, written to
    a temporary name and renamed when complete."""
    import re
    import h5py
    ver = subprocess.run([a.qcal, "version"], capture_output=True, text=True).stdout.strip()
    m = re.match(r"qcal (\S+) \(commit (\S+), (.+), kernels (\S+)\)", ver)
    cpu = {}
    with open("/proc/cpuinfo") as f:
        for line in f:
            k, _, v = line.partition(":")
            cpu.setdefault(k.strip(), v.strip())
    cols = [("model", "s", ""), ("family", "s", ""), ("threads", "i", "count"),
            ("fp32_seconds", "f", "s"), ("ort_fp32_seconds", "f", "s"), ("fp32_vs_ort", "f", "x"),
            ("int8_seconds", "f", "s"), ("int8_speedup", "f", "x"), ("int8_vs_qdq_db", "f", "dB")]
    tmp_out = f"{path}.tmp.{os.getpid()}"
    with h5py.File(tmp_out, "w") as f:
        at = f.attrs
        at["schema_version"] = np.int64(4)
        for k, v in (("qcal_version", m.group(1) if m else ver), ("git_commit", m.group(2) if m else ""),
                     ("date", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())),
                     ("cpu_model", cpu.get("model name", "")), ("cpu_flags", cpu.get("flags", "")),
                     ("kernels", m.group(4) if m else ""), ("gpu", "none (not used)"),
                     ("compiler", m.group(3) if m else ""),
                     ("config", json.dumps({"tool": "scripts/bench-architectures.sh",
                                            "threads": a.threads, "repeat": a.repeat,
                                            "rounds": a.rounds, "networks": nets}))):
            at.create(k, v, dtype=h5py.string_dtype("utf-8"))
        g = f.create_group("architectures")
        for name, t, units in cols:
            vals = [r[name] for r in rows]
            if t == "s":
                d = g.create_dataset(name, data=vals, dtype=h5py.string_dtype("utf-8"))
            else:
                d = g.create_dataset(name, data=np.array(vals, np.int64 if t == "i" else np.float64))
            if units:
                d.attrs.create("units", units, dtype=h5py.string_dtype("utf-8"))
    os.replace(tmp_out, path)


rows = []
with tempfile.TemporaryDirectory() as tmp:
    asan_env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=1",
                    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    peers = None if a.quick else onnx_zoo.peers(a.root)
    print(f"{len(nets)} torchvision architectures, {a.threads} threads, load average "
          f"{os.getloadavg()[0]:.2f} at start", flush=True)
    for name in nets:
        t0 = time.time()
        model, x, y_torch = arch_zoo.export(name, a.images)
        q = os.path.join(tmp, name + ".q.onnx")
        r = quantize(model, q, tmp)
        check(r.returncode == 0, f"{name}: qcal quantize ({r.stderr.strip()[-200:]})"
              if r.returncode else f"{name}: qcal quantize")
        if r.returncode:
            continue
        row = {"model": name, "family": arch_zoo.FAMILY[name]}
        out = os.path.join(tmp, "o.npz")
        if a.quick:
            binary, env = (a.asan, asan_env) if a.asan else (a.qcal, None)
            times = 3 if name in GROUPED else 1
            for e in ENGINES:
                for k in range(times):
                    rr, info = infer(binary, q, x, e, out, env=env)
                    ok = rr.returncode == 0 and info is not None
                    outs = np.load(out) if ok else {}
                    finite = ok and all(np.isfinite(outs[o]).all() for o in outs.files)
                    check(finite, f"{name}: engine {e} run {k + 1}/{times} under "
                          f"{'ASan+UBSan' if a.asan else 'the plain build'}: exit "
                          f"{rr.returncode}, finite outputs"
                          + ("" if ok else ": " + rr.stderr.strip()[-300:]))
                    if e == "fp32" and k == 0 and finite:
                        db = sqnr_db(np.load(y_torch), outs[outs.files[0]])
                        row["fp32_vs_torch_db"] = db
                        # float32 against float32 on one photo: only summation
                        # order differs
                        check(db >= 60, f"{name}: fp32 engine against torch {db:.1f} dB (>= 60)")
            print(f"     {name}: {time.time() - t0:.0f} s", flush=True)
            rows.append(row)
            continue
        # full mode: alternate rounds (qcal fp32, ORT fp32, qcal fp32 on Q/DQ, qcal int8)
        lat = {k: [] for k in ("fp32", "ort", "qfp32", "int8")}
        db_qdq = None
        for _ in range(a.rounds):
            rr, info = infer(a.qcal, model, x, "qdq", out, a.repeat)
            if info:
                lat["fp32"].append(info["latency_ms"])
            _, ms = onnx_zoo.ort_run(a.root, peers, model, x, os.path.join(tmp, "ort"),
                                     a.threads, a.repeat)
            lat["ort"].append(ms)
            rr, info = infer(a.qcal, q, x, "fp32", out, a.repeat)
            if info:
                lat["qfp32"].append(info["latency_ms"])
            rr, info = infer(a.qcal, q, x, "int8", out, a.repeat)
            if info:
                lat["int8"].append(info["latency_ms"])
                db_qdq = info["sqnr_vs_qdq_db"][0]
        med = {k: float(np.median(v)) if v else float("nan") for k, v in lat.items()}
        row.update(threads=a.threads, fp32_seconds=med["fp32"] / 1e3,
                   ort_fp32_seconds=med["ort"] / 1e3, fp32_vs_ort=med["fp32"] / med["ort"],
                   int8_seconds=med["int8"] / 1e3, int8_speedup=med["qfp32"] / med["int8"],
                   int8_vs_qdq_db=db_qdq if db_qdq is not None else float("nan"))
        check(len(lat["int8"]) == a.rounds and len(lat["fp32"]) == a.rounds,
              f"{name}: every round ran ({time.time() - t0:.0f} s)")
        rows.append(row)
    print(f"(load average {os.getloadavg()[0]:.2f} at end)")

if not a.quick and rows:
    print(f"\n| network | family | qcal FP32 ms | ORT FP32 ms | qcal/ORT | INT8 ms | INT8/FP32 "
          f"speed-up | INT8 vs Q/DQ dB |\n|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['family']} | {1e3 * r['fp32_seconds']:.2f} | "
              f"{1e3 * r['ort_fp32_seconds']:.2f} | {r['fp32_vs_ort']:.2f} | "
              f"{1e3 * r['int8_seconds']:.2f} | {r['int8_speedup']:.2f}x | "
              f"{r['int8_vs_qdq_db']:.1f} |")
    g = lambda k: float(np.exp(np.mean(np.log([r[k] for r in rows]))))  # noqa: E731
    print(f"| geometric mean | | | | {g('fp32_vs_ort'):.2f} | | {g('int8_speedup'):.2f}x | |")
    if a.output:
        write_h5(a.output, rows)
        print(f"wrote {a.output} (qcal report {a.output} -o DIR draws it)")
print(f"{len(failures)} failed")
sys.exit(1 if failures else 0)
