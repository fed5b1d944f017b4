"""Read a sweep's HDF5 results the way users do (h5py) and check the schema:
provenance, equal-length columns, units, amax slices, the clip/round split,
and histogram counts.
usage: check_results.py QCAL_BINARY"""
import json
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np


def main():
    qcal = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "r.h5")
        w = np.random.default_rng(3).standard_normal((8, 500)).astype(np.float32)
        np.save(os.path.join(tmp, "w.npy"), w)
        r = subprocess.run([qcal, "sweep", "--no-network", "--synthetic-size", "8192",
                            "--bits", "4,8", "-o", out, os.path.join(tmp, "w.npy")],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert f"results: {out}" in r.stdout
        f = h5py.File(out, "r")
        assert f.attrs["schema_version"] == 6
        for key in ["qcal_version", "git_commit", "date", "cpu_model", "cpu_flags", "gpu",
                    "compiler", "config"]:
            assert key in f.attrs, key
        cfg = json.loads(f.attrs["config"])
        assert cfg["bits"] == [4, 8] and cfg["synthetic_size"] == 8192
        col = lambda v: v.asstr()[()] if v.dtype.kind == "O" else v[()]
        tables = {}
        for name in ["tensors", "results", "timing"]:
            cols = {k: col(v) for k, v in f[name].items()}
            lengths = {len(v) for v in cols.values()}
            assert len(lengths) == 1, (name, lengths)
            tables[name] = cols
        res = tables["results"]
        assert f["results/sqnr_db"].attrs["units"] == "dB"
        assert f["results/collect_seconds"].attrs["units"] == "s"
        n = len(res["tensor"])
        assert n == (8 * 6 + 3 * 12) * 2, n
        amax = f["amax_values"][()]
        for i in range(n):
            sl = amax[res["amax_offset"][i]: res["amax_offset"][i] + res["channels"][i]]
            assert len(sl) == res["channels"][i]
            assert np.isclose(sl.min(), res["amax_min"][i]) and np.isclose(sl.max(), res["amax_max"][i])
            assert np.isclose(res["clip_mse"][i] + res["round_mse"][i], res["mse"][i], rtol=1e-9)
        # the file tensor's per-channel amax for max calibration is its channel max
        sel = [i for i in range(n) if res["tensor"][i] == "file/w" and res["method"][i] == "max"
               and res["granularity"][i] == "per-channel" and res["bits"][i] == 8]
        assert len(sel) == 1
        i = sel[0]
        got = amax[res["amax_offset"][i]: res["amax_offset"][i] + 8]
        assert np.array_equal(got, np.abs(w).max(axis=1)), (got, np.abs(w).max(axis=1))
        # histograms count every element of their tensor
        tens = tables["tensors"]
        for t in range(len(tens["name"])):
            o, e, b = (tens[k][t] for k in ("histogram_offset", "histogram_edge_offset",
                                             "histogram_bins"))
            counts = f["histogram_counts"][o: o + b]
            edges = f["histogram_edges"][e: e + b + 1]
            assert counts.sum() == tens["numel"][t], (tens["name"][t], counts.sum())
            assert len(edges) == len(counts) + 1 and edges[0] == 0
        # every table of the file follows the one schema list (qcal schema)
        schema = json.loads(subprocess.run([qcal, "schema", "--format", "json"], check=True,
                                           capture_output=True, text=True).stdout)
        kinds = {"float64": "f", "int64": "i", "string": "O"}
        seen = 0
        for tname, spec in schema.items():
            if tname not in f:
                continue
            for c in spec["columns"]:
                d = f[f"{tname}/{c['name']}"]
                assert d.dtype.kind == kinds[c["type"]], (tname, c["name"], d.dtype)
                assert d.attrs.get("units", "") == c["units"], (tname, c["name"])
                v = d[()]
                if c["type"] != "string":
                    v = v[~np.isnan(v)] if c["type"] == "float64" else v
                    if c.get("min") is not None:
                        assert (v >= c["min"]).all(), (tname, c["name"])
                    if c.get("max") is not None:
                        assert (v <= c["max"]).all(), (tname, c["name"])
                seen += 1
        assert {"tensors", "results", "timing"} <= set(f.keys())
        assert seen == sum(len(spec["columns"]) for t, spec in schema.items() if t in f), seen
        # the docs carry the same table
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        md = subprocess.run([qcal, "schema"], check=True, capture_output=True, text=True).stdout
        docs = open(os.path.join(root, "docs", "results.md")).read()
        assert md.strip() in docs, "docs/results.md differs from `qcal schema`: paste its output"
        print(f"results file ok: {n} rows, {len(tens['name'])} tensors, {seen} schema columns")
        print("1 passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
