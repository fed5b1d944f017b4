"""qcal amax against the independent NumPy oracle, on seeded data: the amax
of every method must be identical (float32), per tensor and per channel.
usage: check_calibrators.py QCAL_BINARY"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pq_oracle as pq  # noqa: E402


def data(kind, n, rng):
    if kind == "gaussian":
        return rng.standard_normal(n)
    if kind == "laplace":
        return rng.laplace(size=n)
    if kind == "relu":
        return np.maximum(rng.standard_normal(n), 0)
    if kind == "uniform":
        return rng.uniform(-1, 1, n)
    if kind == "outliers":
        x = rng.standard_normal(n)
        x[rng.random(n) < 1e-3] = 40.0
        return x
    if kind == "integers":  # many exact ties and empty bins
        return rng.integers(-20, 21, n).astype(np.float64)
    raise ValueError(kind)


def main():
    qcal = sys.argv[1]
    rng = np.random.default_rng(2026)
    failures, checks = 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        cases = []
        for kind in ["gaussian", "laplace", "relu", "uniform", "outliers", "integers"]:
            x = data(kind, 200_000, rng).astype(np.float32)
            cases.append((kind, x, {"bins": 512}, None))
        x = data("gaussian", 300_000, rng).astype(np.float32)
        cases.append(("gaussian-2048", x, {"bins": 2048}, None))
        # per channel on axis 0: four channels with scales 1, 10, 0.1, 3
        w = (rng.standard_normal((4, 50_000)) * np.array([[1], [10], [0.1], [3]])).astype(np.float32)
        cases.append(("per-channel", w, {"bins": 512}, 0))

        for name, x, extra, axis in cases:
            path = os.path.join(tmp, name + ".npy")
            np.save(path, x)
            chans = [x] if axis is None else [x[c] for c in range(x.shape[0])]
            hists = [pq.collect(c, nbins=extra["bins"]) for c in chans]
            configs = [
                ("entropy", {"bits": 8}), ("entropy", {"bits": 4}),
                ("entropy", {"bits": 7, "unsigned": True}), ("entropy", {"bits": 8, "stride": 3}),
                ("mse", {"bits": 8}), ("mse", {"bits": 4}),
                ("percentile", {"percentile": 99.99}), ("percentile", {"percentile": 99.9}),
                ("max", {}),
            ]
            for method, cfg in configs:
                if name == "gaussian-2048" and method == "entropy" and cfg != {"bits": 8}:
                    continue  # the slow oracle runs once at full size
                cmd = [qcal, "amax", path, "--method", method, "--format", "json",
                       "--bins", str(extra["bins"])]
                if axis is not None:
                    cmd += ["--axis", str(axis)]
                if "bits" in cfg:
                    cmd += ["--bits", str(cfg["bits"])]
                if cfg.get("unsigned"):
                    cmd += ["--unsigned"]
                if "stride" in cfg:
                    cmd += ["--stride", str(cfg["stride"])]
                if "percentile" in cfg:
                    cmd += ["--percentile", str(cfg["percentile"])]
                r = subprocess.run(cmd, capture_output=True, text=True)
                if r.returncode != 0:
                    print(f"FAIL {name} {method} {cfg}: exit {r.returncode}: {r.stderr.strip()}")
                    failures += 1
                    continue
                got = [np.float32(a) for a in json.loads(r.stdout)["amax"]]
                want = []
                for (counts, edges), c in zip(hists, chans):
                    bits, uns = cfg.get("bits", 8), cfg.get("unsigned", False)
                    if method == "max":
                        want.append(np.float32(np.abs(c).max()))
                    elif method == "entropy":
                        want.append(pq.amax_entropy(counts, edges, bits, uns, 128, cfg.get("stride", 1))[0])
                    elif method == "mse":
                        want.append(pq.amax_mse(counts, edges, bits, uns))
                    else:
                        want.append(pq.amax_percentile(counts, edges, cfg["percentile"]))
                checks += 1
                if len(got) != len(want) or any(np.float32(g) != np.float32(w) for g, w in zip(got, want)):
                    failures += 1
                    print(f"FAIL {name} {method} {cfg}: qcal {got} oracle {want}")
                else:
                    print(f"ok   {name:14s} {method:10s} {str(cfg):36s} amax {[float(g) for g in got]}")
    print(f"{checks - failures} passed, {failures} failed")
    return 1 if failures or checks == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
