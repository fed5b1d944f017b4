#!/usr/bin/env python3
"""Training speed of `qcal qat` beside PyTorch (Debian python3-torch, CPU)
on the same network, batch size, image count and thread count, measured in
the same run, alternating: qcal's median epoch time (from its results file)
against PyTorch's median over the same number of steps.

  bench_train.py QCAL_BIN [THREADS] [IMAGES] [ROUNDS]

Prints one line per network and a JSON summary; exit 1 when a run fails
(speed is reported, never asserted: this is a benchmark)."""
import json, os, statistics, subprocess, sys, tempfile, time

import h5py
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qat_nets import NETS  # noqa: E402


def torch_epoch(net, images, batch, threads, seed):
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    model = NETS[net]()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(images, 1, 28, 28)
    y = torch.randint(0, 10, (images,))
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    steps = images // batch
    # one warm-up step (allocator, oneDNN primitive creation)
    opt.zero_grad(); loss_fn(model(x[:batch]), y[:batch]).backward(); opt.step()
    t0 = time.perf_counter()
    perm = torch.randperm(images)
    for k in range(steps):
        idx = perm[k * batch:(k + 1) * batch]
        opt.zero_grad()
        loss = loss_fn(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def qcal_epoch(qcal, net, images, threads, tmp):
    out = os.path.join(tmp, f"{net}.h5")
    r = subprocess.run([qcal, "qat", "--net", net, "--epochs", "1", "--qat-epochs", "0",
                        "--bits", "8", "--quick", "--threads", str(threads), "-o", out],
                       capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"qcal qat failed: {r.stderr.strip()}")
    with h5py.File(out) as f:
        g = f["qat"]
        stage = [s.decode() for s in g["stage"][:]]
        i = stage.index("fp32")
        return float(g["epoch_seconds"][i])


def main():
    qcal = sys.argv[1]
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    images = int(sys.argv[3]) if len(sys.argv) > 3 else 8192  # --quick's training images
    rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    batch = 128
    load0 = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for net in NETS:
            q, t = [], []
            for _ in range(rounds):
                q.append(qcal_epoch(qcal, net, images, threads, tmp))
                t.append(torch_epoch(net, images, batch, threads, 0))
            qm, tm = statistics.median(q), statistics.median(t)
            rows.append({"net": net, "qcal_s": qm, "torch_s": tm, "ratio": qm / tm})
            print(f"{net:10s} epoch of {images} images, batch {batch}, {threads} threads: "
                  f"qcal {qm:.2f} s, PyTorch {tm:.2f} s, qcal/PyTorch {qm / tm:.2f}x")
    print(json.dumps({"torch": torch.__version__, "load_start": load0,
                      "load_end": os.getloadavg()[0], "rows": rows}))


if __name__ == "__main__":
    main()
