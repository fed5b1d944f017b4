"""Untrusted input end to end (issue 8): hostile tensor names through sweep and
report, damaged results files of every class through report, compare and
export, the compressed bomb, clobbering paths and the fuzz regressions.
Every bad input must give exit 2 and one line on stderr naming the file.
usage: check_hostile.py QCAL_BINARY SOURCE_ROOT"""
import glob
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile

import h5py
import numpy as np

QCAL, ROOT = sys.argv[1], sys.argv[2]
failures, counts, passed = [], {}, [0]


def run(*args, cwd=None, env=None):
    r = subprocess.run([QCAL, *args], capture_output=True, text=True, cwd=cwd, timeout=120,
                       env=env)
    return r.returncode, r.stdout, r.stderr


def run_peak_rss(*args):
    """Run QCAL with args; return (status, stderr, the child's own peak RSS in KiB).
    os.wait4 gives that child's rusage alone (no /usr/bin/time needed)."""
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([QCAL, *args], stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        return proc.returncode, err.read().decode(errors="replace"), usage.ru_maxrss


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    passed[0] += bool(cond)
    if not cond:
        failures.append(what)


def one_line_error(rc, err, name):
    lines = [l for l in err.splitlines() if l.strip()]
    return rc == 2 and len(lines) == 1 and name in lines[0]


with tempfile.TemporaryDirectory() as tmp:
    p = lambda n: os.path.join(tmp, n)
    a = np.random.default_rng(1).standard_normal((8, 64)).astype(np.float32)
    evil = {"w'; x=system('touch PWNED'); print '": a, "<script>alert(1)</script>": a,
            'q"\\|*_`x': a}
    np.savez(p("evil.npz"), **evil)
    rc, out, err = run("sweep", "evil.npz", "--no-network", "--no-synthetic", "-o", "evil.h5", cwd=tmp)
    check(rc == 0, "sweep of hostile names: " + err.strip())
    rc, _, err = run("report", "evil.h5", "-o", "r", cwd=tmp)
    check(rc == 0, "report of hostile names: " + err.strip())
    check(not glob.glob(os.path.join(tmp, "**", "PWNED"), recursive=True) and
          not os.path.exists("PWNED"), "no file PWNED: gnuplot ran no command")
    html = open(p("r/index.html")).read()
    check("<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html,
          "the page shows <script> as text")
    check("w&#39;; x=system(&#39;touch PWNED&#39;)" in html, "the page shows the quote name as text")
    gp = open(p("r/histograms.gp")).read()
    check("'w''; x=system(''touch PWNED''); print '':" in gp or "w''; x=system(''touch PWNED'')" in gp,
          "the gnuplot script holds the name as an escaped string literal")
    md = open(p("r/summary.md")).read()
    check("<script>" not in md, "summary.md escapes the names")
    # control characters in names (zip member names arrive as CP437 text, so
    # safetensors, whose JSON header carries any code point)
    def safetensors(path, names, data):
        hdr, off = {}, 0
        for n in names:
            hdr[n] = {"dtype": "F32", "shape": list(data.shape), "data_offsets": [off, off + data.nbytes]}
            off += data.nbytes
        h = json.dumps(hdr).encode()
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", len(h)) + h + data.tobytes() * len(names))
    safetensors(p("esc.safetensors"), ["esc\x1b]0;pwned\x07\nnext"], a)
    rc, out, err = run("sweep", "esc.safetensors", "--no-network", "--no-synthetic", "-o", "e.h5",
                       cwd=tmp)
    check(rc == 0 and "\x1b" not in out and "\x07" not in out and "esc?]0;pwned?" in out,
          "terminal control characters in names are not printed")
    safetensors(p("nan.safetensors"), ["nan\nline\x1b[2J"], np.full((2, 2), np.nan, np.float32))
    rc, _, err = run("sweep", "nan.safetensors", "--no-network", "--no-synthetic", "-o", "n.h5", cwd=tmp)
    check(rc == 2 and len(err.splitlines()) == 1 and "\x1b" not in err and "nan line?[2J" in err,
          "an error naming a name with control characters stays one clean line: " + err.strip())
    rc, out, err = run("compare", "evil.h5", "evil.h5", "--format", "md", "--rows", "1000", cwd=tmp)
    rows = [l for l in out.splitlines() if l.startswith("| results")]
    cells = lambda l: len(l.replace("\\|", "")) - len(l.replace("\\|", "").replace("|", ""))
    check(rc == 0 and rows and "<script>" not in out and all(cells(l) == 8 for l in rows),
          "compare --format md escapes the names (%d rows, 7 cells each)" % len(rows))
    rc, _, err = run("report", "evil.h5", "-o", "it's a dir", cwd=tmp)
    check(rc == 0 and os.path.exists(p("it's a dir/index.html")), "report -o with a quote: " + err)

    # a network whose output and node names are hostile: the per-output
    # figures (e2e_outputs.gp, sensitivity_outputs.gp) carry them
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    out_name = "y'; x=system('touch PWNED'); print '"
    wgt = numpy_helper.from_array(np.random.default_rng(2).standard_normal((2, 3, 3, 3))
                                  .astype(np.float32), "w")
    long_name = "o" * 57 + "'; x=system('touch PWNED'); print '"  # cut in the figure's key
    g = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], [out_name], name="<script>/c'onv", pads=[1, 1, 1, 1]),
         helper.make_node("Conv", ["x", "w"], [long_name], name="second", pads=[1, 1, 1, 1])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, [1, 2, 8, 8]),
         helper.make_tensor_value_info(long_name, TensorProto.FLOAT, [1, 2, 8, 8])], [wgt])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), p("evil.onnx"))
    os.makedirs(p("photos"))
    for k in range(4):
        with open(p("photos/p%d.ppm" % k), "wb") as f:
            f.write(b"P6\n8 8\n255\n" + np.random.default_rng(k).integers(0, 256, 192,
                                                                               np.uint8).tobytes())
    rc, _, err = run("sweep", "--model", "evil.onnx", "--images", "photos", "--no-synthetic",
                     "-o", "evilnet.h5", cwd=tmp)
    check(rc == 0, "sweep of a network with hostile names: " + err.strip())
    rc, _, err = run("report", "evilnet.h5", "-o", "rn", cwd=tmp)
    check(rc == 0 and not glob.glob(os.path.join(tmp, "**", "PWNED"), recursive=True),
          "report of the network: no file PWNED: " + err.strip())
    gp = open(p("rn/e2e_outputs.gp")).read()
    check("y''; x=system(''touch PWNED''); print ''" in gp,
          "e2e_outputs.gp holds the output name as an escaped string literal")
    html = open(p("rn/index.html")).read()
    check("<script>" not in html and "&lt;script&gt;" in html, "the page shows the layer name as text")

    # gemm --model prints the model's layer names: control characters as '?'
    g = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="esc\x1b]0;pwned\x07/conv")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 6, 6])], [wgt])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), p("esc.onnx"))
    rc, out, err = run("gemm", "--engine", "cpu", "--sizes", "32", "--types", "f32", "--model",
                       "esc.onnx", "--input-size", "33", cwd=tmp)
    check(rc in (0, 1) and "\x1b" not in out and "\x07" not in out and "esc?]0;pwned?" in out,
          "gemm prints layer names without their control characters")

    # a valid base for the damaged copies
    rc, _, err = run("sweep", "--no-network", "--synthetic-size", "4096", "-o", p("base.h5"))
    check(rc == 0, "sweep for the damaged copies: " + err.strip())

    def damaged(cls, name, edit):
        path = p(name + ".h5")
        shutil.copy(p("base.h5"), path)
        with h5py.File(path, "r+") as f:
            edit(f)
        ok = True
        for cmd in (["report", path, "-o", p(name + "-rep")], ["compare", p("base.h5"), path],
                    ["export", path, "--method", "max"]):
            rc, out, err = run(*cmd)
            good = one_line_error(rc, err, path) and (cmd[0] != "export" or out == "")
            ok &= good
            if not good:
                print("     %s: rc %d, stderr %r" % (cmd[0], rc, err[-300:]))
        c = counts.setdefault(cls, [0, 0])
        c[0] += 3
        c[1] += 3 if ok else 0
        check(ok, "%s (%s): report, compare and export exit 2 with one line" % (cls, name))

    def replace(f, path, data):
        del f[path]
        f[path] = data

    s = h5py.string_dtype()
    damaged("wrong class", "units-int", lambda f: (f["results/sqnr_db"].attrs.__delitem__("units"),
                                                    f["results/sqnr_db"].attrs.create("units", 0x4141414141414141)))
    damaged("wrong class", "strings-for-numbers",
            lambda f: replace(f, "results/sqnr_db", np.array(["x"] * len(f["results/sqnr_db"]), dtype=s)))
    damaged("wrong class", "numbers-for-strings",
            lambda f: replace(f, "results/method", np.zeros(len(f["results/method"]))))
    damaged("wrong class", "column-is-group", lambda f: (f.__delitem__("results/bits"),
                                                          f.create_group("results/bits")))
    damaged("wrong rank", "2d-column", lambda f: replace(f, "results/amax_offset",
                                                         np.zeros((len(f["results/amax_offset"]), 2), np.int64)))
    damaged("wrong dims", "short-column", lambda f: replace(f, "results/bits", f["results/bits"][:-1]))
    damaged("huge dims", "never-written", lambda f: (f.__delitem__("results/amax"),
                                                     f.create_dataset("results/amax", shape=(10**9,), dtype="f8")))
    damaged("huge dims", "2^61-rows", lambda f: (f.__delitem__("tensors/numel"),
                                                 f.create_dataset("tensors/numel", shape=(2**61,), dtype="i8",
                                                                  chunks=(1024,))))
    damaged("missing column", "no-tensor-id", lambda f: f.__delitem__("results/tensor_id"))
    damaged("missing column", "no-amax-values", lambda f: f.__delitem__("amax_values"))
    for col, val, nm in (("tensor_id", 10**6, "tensor-id"), ("tensor_id", -1, "tensor-id-neg"),
                         ("amax_offset", 2**62, "amax-offset"), ("channels", 0, "channels-0"),
                         ("bits", 0, "bits-0"), ("layer", 10**6, "layer")):
        def edit(f, col=col, val=val):
            v = f["results/" + col][()]
            v[0] = val
            f["results/" + col][...] = v
        damaged("out-of-range index", nm, edit)
    for col, val, nm in (("histogram_offset", 10**9, "histogram-offset"),
                         ("histogram_edge_offset", -5, "histogram-edge-offset"),
                         ("histogram_bins", 10**6, "histogram-bins")):
        def edit(f, col=col, val=val):
            v = f["tensors/" + col][()]
            v[0] = val
            f["tensors/" + col][...] = v
        damaged("out-of-range index", nm, edit)
    damaged("huge dims", "histogram-never-written",
            lambda f: (f.__delitem__("histogram_counts"),
                       f.create_dataset("histogram_counts", shape=(10**9,), dtype="u8", chunks=(65536,))))
    damaged("wrong class", "histogram-edges-int",
            lambda f: replace(f, "histogram_edges", f["histogram_edges"][()].astype(np.int32)))
    damaged("bad value", "nan-amax", lambda f: f["amax_values"].__setitem__(0, np.nan))
    damaged("bad value", "schema-1.5", lambda f: f.attrs.__setitem__("schema_version", 1.5))
    damaged("bad value", "long-string", lambda f: replace(f, "results/method",
                                                          np.array(["m" * 5000] * len(f["results/method"]), dtype=s)))
    damaged("missing table", "no-results", lambda f: f.__delitem__("results"))

    # compare fails closed on an empty or missing table in NEW
    shutil.copy(p("base.h5"), p("empty.h5"))
    with h5py.File(p("empty.h5"), "r+") as f:
        for k in list(f["results"].keys()):
            d = f["results/" + k]
            del f["results/" + k]
            f.create_dataset("results/" + k, shape=(0,), dtype=d.dtype)
    rc, _, err = run("compare", p("base.h5"), p("empty.h5"))
    check(one_line_error(rc, err, "empty.h5"), "compare: NEW's table empty -> exit 2")

    # results never lost
    rc, _, err = run("export", p("base.h5"), "--method", "max", "-o", p("base.h5"))
    check(rc == 2 and h5py.is_hdf5(p("base.h5")), "export -o INPUT refused, input intact")
    np.save(p("t.npy"), a)
    shutil.copy(p("base.h5"), p("in.h5"))
    with h5py.File(p("in.h5"), "r+") as f:
        f["x"] = a
    rc, _, err = run("sweep", p("in.h5") + ":x", "--no-network", "--no-synthetic", "-o", p("in.h5"))
    check(one_line_error(rc, err, "in.h5") and "x" in h5py.File(p("in.h5"), "r"),
          "sweep -o INPUT refused, input intact")
    os.makedirs(p("mine"))
    open(p("mine/keep"), "w").close()
    rc, _, err = run("report", p("base.h5"), "-o", p("mine"))
    check(rc == 2 and os.path.exists(p("mine/keep")), "report never replaces a user's folder")
    before = open(p("r/index.html")).read()
    rc, _, err = run("report", p("units-int.h5"), "-o", p("r"))
    check(rc == 2 and open(p("r/index.html")).read() == before and
          not glob.glob(p("r.tmp.*")), "a failing report leaves the earlier one untouched")
    rc, _, err = run("gemm", "--quick", "-o", p("nodir/x.h5"))
    check(one_line_error(rc, err, "nodir"), "gemm checks -o before running")
    rc, _, err = run("stream", "--quick", "--json", p("mine"))
    check(one_line_error(rc, err, "mine"), "stream checks --json before running")

    # the compressed bomb: refused from its header, before inflating
    with zipfile.ZipFile(p("bomb.npz"), "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("big.npy", "w", force_zip64=True) as f:
            for _ in range(16):
                f.write(bytes(1 << 24))
    rc, err, rss_kb = run_peak_rss("sweep", p("bomb.npz"), "--no-network", "--no-synthetic",
                                   "-o", p("b.h5"))
    check(rc == 2 and "bad magic" in err and rss_kb < 600 * 1024,
          "256 MiB bomb member refused from its header (%d MB RSS)" % (rss_kb // 1024))

    # exports are all or nothing: no header on stdout before a failure
    rc, out, err = run("export", p("base.h5"), "--method", "percentile", "--percentile", "12",
                       "--format", "trt-cache")
    check(rc == 2 and out == "" and "no results" in err, "trt-cache export prints nothing on failure")

    # CLI contract cases
    for args, what in ((["version", "--bogus"], "version --bogus"),
                       (["gemm", "--types", ""], "gemm --types ''"),
                       (["compare", p("base.h5"), p("base.h5"), "--thresholds", tmp], "thresholds DIR")):
        rc, _, err = run(*args)
        check(rc == 2 and len(err.strip().splitlines()) == 1, what + " -> exit 2: " + err.strip())
    open(p("th.conf"), "w").write("sqnr_db_drop = 0.05 garbage\n")
    rc, _, err = run("compare", p("base.h5"), p("base.h5"), "--thresholds", p("th.conf"))
    check(one_line_error(rc, err, "th.conf"), "thresholds line with trailing garbage -> exit 2")
    np.save(p("x2.npy"), a[:2, :3])
    rc, _, err = run("amax", p("x2.npy"), "--axis", "9")
    check(rc == 2 and "out of range" in err, "amax --axis 9 says out of range")

    # fuzz regressions: libhdf5 segfaults, hangs or over-allocates on these;
    # qcal reads them in a child first and must answer exit 2 with one line
    # (one hangs inside libhdf5: QCAL_READ_TIMEOUT keeps the test short)
    env = dict(os.environ, QCAL_READ_TIMEOUT="3")
    for f in sorted(glob.glob(os.path.join(ROOT, "tests/fuzz/regressions/results-*"))):
        for cmd in (["report", f, "-o", p("fz")], ["compare", f, f], ["export", f, "--method", "max"]):
            rc, out, err = run(*cmd, env=env)
            check(one_line_error(rc, err, f) and out == "",
                  "fuzz regression %s through %s: exit 2, one line" % (os.path.basename(f), cmd[0]))
    # HDF5 tensor inputs: declared sizes checked against what is stored, and
    # libhdf5 faults on corrupt files isolated like the results readers'
    with h5py.File(p("ghost.h5"), "w") as f:
        f.create_dataset("x", shape=(20000, 20000), dtype="f4")
    rc, err, rss_kb = run_peak_rss("sweep", p("ghost.h5") + ":x", "--no-network", "--no-synthetic",
                                   "-o", p("g.h5"))
    check(rc == 2 and "stores none" in err and rss_kb < 600 * 1024,
          "a 1.6 GB never-written HDF5 dataset is refused (%d MB RSS)" % (rss_kb // 1024))
    for f in sorted(glob.glob(os.path.join(ROOT, "tests/fuzz/regressions/results-*"))):
        shutil.copy(f, p("in.h5"))
        rc, out, err = run("sweep", p("in.h5"), "--no-network", "--no-synthetic", "-o", p("s.h5"),
                           env=env)
        check(one_line_error(rc, err, "in.h5"),
              "sweep of %s as tensors: exit 2, one line" % os.path.basename(f))

    # a legitimate long attribute (config lists 120 long file names: > 4 KiB)
    os.makedirs(p("many_files"))
    names = []
    for i in range(120):
        names.append(p("many_files/a_rather_long_file_name_for_the_config_attribute_%03d.npy" % i))
        np.save(names[-1], a[:4, :8])
    rc, _, err = run("sweep", *names, "--no-network", "--no-synthetic", "-o", p("mf.h5"))
    with h5py.File(p("mf.h5"), "r") as f:
        long_cfg = len(f.attrs["config"]) > 4096
    rc2, _, err2 = run("report", p("mf.h5"), "-o", p("mfr"))
    check(rc == 0 and long_cfg and rc2 == 0, "a results file with an 8 KB config reports: " + err + err2)

    # the many-member archive: every member swept, one row each per method
    b = io.BytesIO()
    n_members = 20000
    with zipfile.ZipFile(p("many.npz"), "w", zipfile.ZIP_STORED) as z:
        for i in range(n_members):
            m = io.BytesIO()
            np.save(m, np.array([1.0, -2.0, 0.5, 0.25 * i], np.float32))
            z.writestr("t%06d.npy" % i, m.getvalue())
    rc, out, err = run("sweep", p("many.npz"), "--no-network", "--no-synthetic", "-o", p("many.h5"))
    ok = rc == 0
    if ok:
        with h5py.File(p("many.h5"), "r") as f:
            ok = (len(f["tensors/name"]) == n_members and len(f["results/tensor_id"]) == 6 * n_members
                  and len(f["histogram_counts"]) == 2048 * n_members)
    check(ok, "a %d-member archive sweeps whole: %s" % (n_members, err.strip()[-200:]))

for cls, (n, ok) in counts.items():
    print("damaged %-20s %d runs, %d exit 2 with one line" % (cls + ":", n, ok))
print("%d passed, %d failed" % (passed[0], len(failures)))
sys.exit(1 if failures else 0)
