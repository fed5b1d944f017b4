"""PTQ repair (`qcal quantize --repair`, docs/repair.md) against independent
arithmetic:

- cross-layer equalization: a seeded PyTorch network (conv -> ReLU ->
  depthwise -> ReLU6 -> pointwise -> PReLU -> grouped conv -> ReLU -> conv,
  BatchNorm after each, channel ranges spread over orders of magnitude) is
  exported to ONNX; `--method none --repair cle` writes it equalized. Its
  weights equal a NumPy implementation of Nagel et al. 2019's equations
  (BatchNorm folded, s = sqrt(r1 / r2) per channel, repeated to
  convergence), and ONNX Runtime runs both files to the same outputs
  (>= 100 dB); a model with no pair says so and still writes;
- bias absorption: conv -> ReLU -> 1x1 -> ReLU6 -> 1x1 with high biases:
  both pairs absorbed, each ReLU written as Max against a floor below 0,
  and the float model inside the file equal to the original (>= 60 dB,
  bias correction's shifts aside) on inputs far outside the calibration
  photos, where the paper's ReLU form (the control) is not;
- analytic bias correction (bias-bn): a network exported with its
  BatchNorms: each corrected bias equals b - (W_q - W) E[x] with E[x] of
  clip(z, lo, hi), z ~ N(beta, gamma^2), integrated numerically in NumPy;
  a model whose BatchNorms were folded at export says so;
- bias correction: on a one-convolution model, the corrected bias in the
  written file equals b - mean(W_q * Q(x) - W * x) over the calibration
  photos, computed in NumPy from the photos and the --json scales;
- AdaRound: each layer's problem (weights, Gram matrix, scales) as qcal
  solved it, solved again by a PyTorch implementation (BRECQ's rectified
  sigmoid, regulariser and annealing, Adam): the same loss curve within
  tolerance, and qcal's final reconstruction error the same or better;
- mixed precision: `--target-db 30` on facemesh reaches 30 dB in ONNX
  Runtime on the held-out photos with >= 75% of the weights in int8; on
  handlandmark-full (hand crops), whose written file lands ~2 dB below the
  search's simulation, the file as written reaches 30 dB in qcal and in
  ONNX Runtime (the search runs again aiming higher);
- `qcal zoo --repair` and `qcal sweep --repair`: the repaired rows (repair
  column set) beside the plain ones, the networks table's repaired columns
  equal to the worst of those rows and a "needed" verdict; the repaired
  per-tensor row of the zoo equals what ONNX Runtime delivers on the same
  held-out photos for the file `qcal quantize` writes with the same split,
  method, placement and repairs (within 1 dB); the zoo heatmap draws
  discrete cells (no embedded bitmap);
- bad input: an unknown repair, --target-db out of range, repairs with
  --method none, --repair without a network: exit 2 with one line.
usage: check_repair.py QCAL SOURCE_ROOT"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(__file__))
import oracle  # noqa: E402
from oracle import run  # noqa: E402
import onnx_zoo  # noqa: E402

qcal, root = sys.argv[1], sys.argv[2]
models = subprocess.run([os.path.join(root, "scripts/fetch-models.sh")], check=True,
                        capture_output=True, text=True).stdout.strip()
images = os.path.join(subprocess.run([os.path.join(root, "scripts/fetch-data.sh")], check=True,
                                     capture_output=True, text=True).stdout.strip(), "images")
peers = onnx_zoo.peers(root)
check = oracle.Checks()






def ort(model, x, prefix, level="all"):
    outs, _ = onnx_zoo.ort_run(root, peers, model, x, prefix, level=level)
    return [o.astype(np.float64) for o in outs]


def make_net(path):
    import torch
    import torch.nn as nn
    torch.manual_seed(7)
    net = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.BatchNorm2d(16), nn.ReLU6(),
        nn.Conv2d(16, 24, 1), nn.BatchNorm2d(24), nn.PReLU(24),
        nn.Conv2d(24, 24, 3, padding=1, groups=4), nn.BatchNorm2d(24), nn.ReLU(),
        nn.Conv2d(24, 8, 1))
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.BatchNorm2d):  # channel ranges over three decades
                c = m.num_features
                m.weight.copy_(10 ** (torch.rand(c, generator=g) * 3 - 1.5))
                m.bias.copy_(torch.randn(c, generator=g) * 0.5)
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            if isinstance(m, nn.PReLU):
                m.weight.copy_(torch.rand(24, generator=g) * 0.3)
    net.eval()
    torch.onnx.export(net, torch.zeros(1, 3, 32, 32), path, opset_version=13,
                      input_names=["x"], output_names=["y"])
    return net


def folded(net):
    """(weight, bias) of each conv with its BatchNorm folded, in NumPy."""
    import torch.nn as nn
    mods = list(net)
    out = []
    for i, m in enumerate(mods):
        if not isinstance(m, nn.Conv2d):
            continue
        w = m.weight.detach().numpy().astype(np.float64)
        b = m.bias.detach().numpy().astype(np.float64)
        if i + 1 < len(mods) and isinstance(mods[i + 1], nn.BatchNorm2d):
            bn = mods[i + 1]
            s = bn.weight.detach().numpy() / np.sqrt(bn.running_var.numpy() + bn.eps)
            w = w * s[:, None, None, None]
            b = (b - bn.running_mean.numpy()) * s + bn.bias.detach().numpy()
        out.append([w, b, m.groups])
    return out


def cle_numpy(layers):
    """Nagel et al. 2019, eq. (8)-(11): every consecutive pair, to convergence."""
    for _ in range(5000):
        worst = 0.0
        for (w1, b1, _), (w2, _, g2) in zip(layers, layers[1:]):
            C = w1.shape[0]
            ig = w2.shape[1]
            og = w2.shape[0] // (C // ig)
            r1 = np.abs(w1).reshape(C, -1).max(1)
            r2 = np.array([np.abs(w2[(c // ig) * og:(c // ig + 1) * og, c % ig]).max()
                           for c in range(C)])
            s = np.sqrt(r1 / r2)
            w1 /= s[:, None, None, None]
            b1 /= s
            for c in range(C):
                w2[(c // ig) * og:(c // ig + 1) * og, c % ig] *= s[c]
            worst = max(worst, float(np.abs(np.log(s)).max()))
        if worst < 1e-6:
            break
    return layers


def conv_weights(path):
    """Each Conv's float weight and bias (through a weight's Q/DQ pair)."""
    m = onnx.load(path)
    init = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    prod = {o: n for n in m.graph.node for o in n.output}

    def const(v):
        while v not in init and v in prod and prod[v].op_type in ("QuantizeLinear",
                                                                  "DequantizeLinear"):
            v = prod[v].input[0]
        return init[v]
    return [(const(n.input[1]), const(n.input[2]) if len(n.input) > 2 else None)
            for n in m.graph.node if n.op_type == "Conv"]


def check_cle(tmp):
    src = os.path.join(tmp, "pairs.onnx")
    net = make_net(src)
    out = os.path.join(tmp, "cle.onnx")
    r = run(qcal, "quantize", src, "--method", "none", "--repair", "cle", "-o", out)
    check(r.returncode == 0 and "4 layer pairs equalized" in r.stdout,
          f"cle: 4 pairs equalized ({(r.stdout + r.stderr).strip()[-300:]})")
    if r.returncode:
        return
    want = cle_numpy(folded(net))
    got = conv_weights(out)
    worst = 0.0
    for (w, b, _), (gw, gb) in zip(want, got):
        worst = max(worst, np.abs(gw - w).max() / np.abs(w).max(),
                    np.abs(gb - b).max() / max(np.abs(b).max(), 1e-12))
    check(len(got) == len(want) and worst < 1e-4,
          f"cle: weights and biases equal NumPy's equalization (largest relative difference "
          f"{worst:.2e})")
    ranges = [np.abs(gw).reshape(gw.shape[0], -1).max(1) for gw, _ in got]
    spread0 = max(np.abs(w).reshape(w.shape[0], -1).max(1).ptp() for w, _, _ in folded(net))
    check(max(r.max() / r.min() for r in ranges[:4]) < max(
        np.abs(w).reshape(w.shape[0], -1).max(1).max() / np.abs(w).reshape(w.shape[0], -1).max(1).min()
        for w, _, _ in folded(net)[:4]) and spread0 > 0,
          "cle: the widest per-channel range ratio of the equalized layers shrank")
    x = os.path.join(tmp, "x.npy")
    run(qcal, "infer", src, "--image", os.path.join(images, "astronaut.png"), "--save-input", x,
        "-o", os.path.join(tmp, "f.npz"))
    a, b = ort(src, x, os.path.join(tmp, "a")), ort(out, x, os.path.join(tmp, "b"))
    db = min(onnx_zoo.sqnr_db(p, q) for p, q in zip(a, b))
    check(db >= 100, f"cle: ONNX Runtime gives the equalized model the original's outputs "
          f"({db:.1f} dB >= 100)")
    # no pair: said, not an error
    import torch
    one = os.path.join(tmp, "one.onnx")
    torch.onnx.export(torch.nn.Conv2d(3, 4, 3), torch.zeros(1, 3, 16, 16), one, opset_version=13)
    r = run(qcal, "quantize", one, "--images", images, "--calib", "2", "--repair", "cle", "-o",
            os.path.join(tmp, "one_q.onnx"))
    check(r.returncode == 0 and "no pair of layers can be equalized" in r.stdout,
          f"cle on a model without pairs: said, exit 0 ({(r.stdout + r.stderr).strip()[-160:]})")


def check_bias(tmp):
    import torch
    torch.manual_seed(5)
    conv = torch.nn.Conv2d(3, 6, 3, stride=2, padding=1)
    src = os.path.join(tmp, "conv.onnx")
    torch.onnx.export(conv, torch.zeros(1, 3, 24, 24), src, opset_version=13, input_names=["x"])
    out, js = os.path.join(tmp, "bias.onnx"), os.path.join(tmp, "bias.json")
    r = run(qcal, "quantize", src, "--images", images, "--method", "max", "--weight-bits", "4",
            "--repair", "bias", "-o", out, "--json", js)
    check(r.returncode == 0, f"bias: quantize --repair bias runs ({r.stderr.strip()[-200:]})")
    if r.returncode:
        return
    scales = json.load(open(js))["tensors"]
    w = conv.weight.detach().numpy().astype(np.float32)
    b = conv.bias.detach().numpy().astype(np.float64)
    wamax = np.array([e["amax"] for n, e in scales.items() if e["kind"] == "weight"][0],
                     dtype=np.float32).reshape(-1)
    xamax = np.float32(np.ravel([e["amax"] for e in scales.values()
                                 if e["kind"] == "activation"][0])[0])

    def fq(v, amax, q):
        s = np.float32(q) / amax
        return (np.rint(np.clip(v * s, -q, q)) / s).astype(np.float32)

    wq = fq(w, wamax[:, None, None, None], 7)
    err = np.zeros(6)
    npos = 0
    for n in sorted(os.listdir(images)):
        x = os.path.join(tmp, "bx.npy")
        if run(qcal, "infer", src, "--image", os.path.join(images, n), "--save-input", x,
               "-o", os.path.join(tmp, "f.npz")).returncode:
            continue
        xi = np.load(x).astype(np.float32)
        xq = fq(xi, xamax, 127)
        with torch.no_grad():
            yq = torch.nn.functional.conv2d(torch.from_numpy(xq).double(),
                                            torch.from_numpy(wq).double(), stride=2, padding=1)
            y = torch.nn.functional.conv2d(torch.from_numpy(xi).double(),
                                           torch.from_numpy(w).double(), stride=2, padding=1)
        d = (yq - y).numpy()
        err += d.sum(axis=(0, 2, 3))
        npos += d.shape[0] * d.shape[2] * d.shape[3]
    want = b - err / npos
    got = conv_weights(out)[0][1].astype(np.float64)
    diff = np.abs(got - want).max()
    check(diff < 1e-4 * max(1.0, np.abs(want).max()) and np.abs(err / npos).max() > 1e-4,
          f"bias: corrected bias = b - mean quantization error of the output over the "
          f"{len(os.listdir(images))} photos (NumPy/torch float64; largest difference {diff:.2e}, "
          f"largest correction {np.abs(err / npos).max():.3e})")


def check_bias_bn(tmp):
    """Analytic bias correction against NumPy: BatchNorm folded by hand, the
    mean of clip(z, lo, hi) for z ~ N(beta, gamma^2) integrated numerically."""
    import torch
    torch.manual_seed(3)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 8, 3, padding=1, groups=8), torch.nn.BatchNorm2d(8), torch.nn.ReLU6(),
        torch.nn.Conv2d(8, 6, 1), torch.nn.BatchNorm2d(6), torch.nn.Conv2d(6, 4, 1))
    with torch.no_grad():
        for m in net:
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1), m.running_var.uniform_(0.5, 2)
                m.weight.uniform_(0.5, 2), m.bias.uniform_(-1, 2)
    src = os.path.join(tmp, "bnnet.onnx")
    torch.onnx.export(net.eval(), torch.zeros(1, 3, 32, 32), src, opset_version=13,
                      training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False,
                      input_names=["x"])
    out, js = os.path.join(tmp, "bnq.onnx"), os.path.join(tmp, "bnq.json")
    r = run(qcal, "quantize", src, "--images", images, "--calib", "2", "--method", "max",
            "--weight-bits", "4", "--repair", "bias-bn", "-o", out, "--json", js)
    check(r.returncode == 0 and "3 layers' biases corrected from 3 folded BatchNorms" in r.stdout,
          f"bias-bn: 3 layers corrected ({(r.stdout + r.stderr).strip()[-200:]})")
    if r.returncode:
        return
    convs = [m for m in net if isinstance(m, torch.nn.Conv2d)]
    bns = {i: net[i + 1] for i, m in enumerate(net) if isinstance(m, torch.nn.Conv2d)
           and i + 1 < len(net) and isinstance(net[i + 1], torch.nn.BatchNorm2d)}
    folded_wb, stats = [], []
    for i, m in enumerate(net):
        if not isinstance(m, torch.nn.Conv2d):
            continue
        w = m.weight.detach().double().numpy()
        b = m.bias.detach().double().numpy()
        if i in bns:
            bn = bns[i]
            s_ = bn.weight.detach().double().numpy() / np.sqrt(bn.running_var.double().numpy()
                                                               + bn.eps)
            w, b = w * s_[:, None, None, None], (b - bn.running_mean.double().numpy()) * s_ + \
                bn.bias.detach().double().numpy()
            stats.append((bn.bias.detach().double().numpy(), np.abs(bn.weight.detach().double()
                                                                     .numpy())))
        else:
            stats.append(None)
        folded_wb.append((w, b))
    bounds = [(0, np.inf), (0, 6), (-np.inf, np.inf)]  # what follows conv 0, 1, 2

    def clipped_mean(mu, sd, lo, hi):  # numerically, on a fine grid
        z = np.linspace(mu - 12 * sd, mu + 12 * sd, 200001)
        pdf = np.exp(-0.5 * ((z - mu) / sd) ** 2) / (sd * np.sqrt(2 * np.pi))
        return np.trapz(np.clip(z, lo, hi) * pdf, z)
    scales = json.load(open(js))["tensors"]
    wamax = [np.array(e["amax"], dtype=np.float32).reshape(-1) for e in scales.values()
             if e["kind"] == "weight"]
    got = conv_weights(out)
    worst, shift = 0.0, 0.0
    for L in range(1, 4):
        beta, gamma = stats[L - 1]
        lo, hi = bounds[L - 1]
        ex = np.array([clipped_mean(beta[c], gamma[c], lo, hi) for c in range(len(beta))])
        w, b = folded_wb[L]
        w32 = w.astype(np.float32)
        s_ = np.float32(7) / wamax[L].reshape(-1, 1, 1, 1).astype(np.float32)
        wq = (np.rint(np.clip(w32 * s_, -7, 7)) / s_).astype(np.float64)
        groups = convs[L].groups
        ig = w.shape[1]
        og = w.shape[0] // groups
        err = np.array([((wq[o] - w32[o].astype(np.float64)) *
                         ex[(o // og) * ig:(o // og + 1) * ig, None, None]).sum()
                        for o in range(w.shape[0])])
        want = b - err
        worst = max(worst, float(np.abs(got[L][1] - want).max()))
        shift = max(shift, float(np.abs(err).max()))
    check(worst < 1e-4 and shift > 1e-3,
          f"bias-bn: corrected biases = b - (W_q - W) E[x], E[x] from BatchNorm's beta/gamma "
          f"through ReLU, ReLU6 and identity, integrated in NumPy (largest difference "
          f"{worst:.2e}, largest correction {shift:.3g})")
    flat = os.path.join(tmp, "bn_folded.onnx")
    torch.onnx.export(net.eval(), torch.zeros(1, 3, 32, 32), flat, opset_version=13)
    r = run(qcal, "quantize", flat, "--images", images, "--calib", "2", "--repair", "bias-bn",
            "-o", os.path.join(tmp, "bnq2.onnx"))
    check(r.returncode == 0 and "carries no BatchNormalization statistics" in r.stdout,
          f"bias-bn on a model whose BatchNorms torch folded at export: said, exit 0 "
          f"({(r.stdout + r.stderr).strip()[-160:]})")


def strip_qdq(path, out):
    """The float model inside a Q/DQ file: every DequantizeLinear(QuantizeLinear(v)) read as v."""
    m = onnx.load(path)
    q_in = {n.output[0]: n.input[0] for n in m.graph.node if n.op_type == "QuantizeLinear"}
    alias = {n.output[0]: q_in[n.input[0]] for n in m.graph.node
             if n.op_type == "DequantizeLinear" and n.input[0] in q_in}
    keep = [n for n in m.graph.node if n.op_type not in ("QuantizeLinear", "DequantizeLinear")]
    for n in keep:
        for i, v in enumerate(n.input):
            n.input[i] = alias.get(v, v)
    del m.graph.node[:]
    m.graph.node.extend(keep)
    onnx.save(m, out)


def check_absorb(tmp):
    """High-bias absorption keeps the float model exact on inputs whose
    pre-activations fall below what the calibration photos showed."""
    import torch
    torch.manual_seed(11)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv2d(8, 8, 1), torch.nn.ReLU6(),
                              torch.nn.Conv2d(8, 4, 1))
    with torch.no_grad():
        net[0].bias.copy_(torch.linspace(0.5, 4.0, 8))  # high biases, as after BatchNorm
        net[2].bias.copy_(torch.linspace(1.0, 3.0, 8))
    src = os.path.join(tmp, "absorb.onnx")
    torch.onnx.export(net.eval(), torch.zeros(1, 3, 32, 32), src, opset_version=13,
                      input_names=["x"])
    out = os.path.join(tmp, "absorb_q.onnx")
    r = run(qcal, "quantize", src, "--images", images, "--calib", "2", "--repair", "bias", "-o",
            out)
    absorbed = int(r.stdout.split(" pairs absorbed")[0].split()[-1]) if " pairs absorbed" in \
        r.stdout else 0
    check(r.returncode == 0 and absorbed == 2,
          f"absorb: both pairs absorbed high bias ({(r.stdout + r.stderr).strip()[-200:]})")
    if r.returncode:
        return
    m = onnx.load(out)
    init = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    floors = [init[n.input[1]] for n in m.graph.node if n.op_type == "Max" and n.input[1] in init]
    check(len(floors) == 2 and all(f.min() < 0 for f in floors),
          f"absorb: each shifted Relu is a Max against a per-channel floor below 0 "
          f"(floors {[float(f.min()) for f in floors]})")
    # the float model inside the file (bias correction's small shifts included), and the same
    # with the paper's form (each floor back to a Relu at 0) as a control
    flt, paper = os.path.join(tmp, "absorb_f.onnx"), os.path.join(tmp, "absorb_p.onnx")
    strip_qdq(out, flt)
    pm = onnx.load(flt)
    for n in pm.graph.node:
        if n.op_type == "Max":
            n.op_type = "Relu"
            del n.input[1:]
    onnx.save(pm, paper)
    x = os.path.join(tmp, "ax.npy")
    run(qcal, "infer", src, "--image", os.path.join(images, "astronaut.png"), "--save-input", x,
        "-o", os.path.join(tmp, "f.npz"))
    photo = np.load(x)
    dbs, paper_dbs = [], []
    for k, scale in enumerate((1.0, -4.0, 6.0)):  # far outside the calibration photos too
        xs = os.path.join(tmp, f"ax{k}.npy")
        np.save(xs, (photo * scale).astype(np.float32))
        a = ort(src, xs, os.path.join(tmp, "aa"))
        b, c = ort(flt, xs, os.path.join(tmp, "ab")), ort(paper, xs, os.path.join(tmp, "ac"))
        dbs.append(min(onnx_zoo.sqnr_db(p, q) for p, q in zip(a, b)))
        paper_dbs.append(min(onnx_zoo.sqnr_db(p, q) for p, q in zip(a, c)))
    check(min(dbs) >= 60 and min(paper_dbs) < 40,
          f"absorb: the float model in the file (Q/DQ stripped; bias correction's shifts are "
          f"all that differs) stays at {', '.join(f'{d:.1f}' for d in dbs)} dB from the original "
          f"on a photo and on it scaled by -4 and 6 (>= 60), where the paper's Relu form gives "
          f"{', '.join(f'{d:.1f}' for d in paper_dbs)} dB (control, < 40 somewhere)")


def adaround_torch(w, H, P, amax, bits, iters, groups, lr=0.01, lam=0.01, b_hi=20, b_lo=2,
                   warm=0.2):
    import torch
    t = torch.float64
    W = torch.tensor(w, dtype=t)
    Hm = torch.tensor(H, dtype=t).reshape(groups, w.shape[1], w.shape[1])
    q = 2 ** (bits - 1) - 1
    s = (q / torch.tensor(amax, dtype=t).reshape(-1, 1).to(torch.float32)).to(t)
    fl = torch.floor(W * s)
    rest = W * s - fl
    V = (-torch.log(1.2 / (rest + 0.1) - 1)).clone().requires_grad_(True)
    with torch.no_grad():  # qcal's dW: the change of h since the start, plus clipping
        q0 = torch.clamp(fl + torch.clamp(torch.sigmoid(V) * 1.2 - 0.1, 0, 1), -q, q)
        c0 = torch.clamp(W * s, -q, q) - W * s
    opt = torch.optim.Adam([V], lr=lr)
    og = w.shape[0] // groups
    curve = []

    def rec_d(D):
        D = D.reshape(groups, og, -1)
        return torch.einsum("gok,gkl,gol->", D, Hm, D) / P

    def rec(Wq):
        return rec_d(Wq - W)

    warm_t = int(warm * iters)
    for it in range(iters):
        h = torch.clamp(torch.sigmoid(V) * 1.2 - 0.1, 0, 1)
        loss = rec_d((torch.clamp(fl + h, -q, q) - q0 + c0) / s)
        if it >= warm_t:
            rel = (it - warm_t) / (iters - warm_t)
            beta = b_lo + (b_hi - b_lo) * max(0.0, 1 - rel)
            loss = loss + lam * (1 - (2 * h - 1).abs().pow(beta)).sum()
        curve.append(float(loss))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        Wq = torch.clamp(fl + (V >= 0).to(t), -q, q) / s
        return np.array(curve), float(rec(Wq))


def check_adaround(tmp):
    src = os.path.join(tmp, "pairs.onnx")
    dump = os.path.join(tmp, "ada.bin")
    iters = 1000
    r = run(qcal, "quantize", src, "--images", images, "--calib", "6", "--weight-bits", "4",
            "--repair", "adaround", "--adaround-iters", iters, "--adaround-dump", dump, "-o",
            os.path.join(tmp, "ada.onnx"))
    check(r.returncode == 0 and "adaround: 5 layers" in r.stdout,
          f"adaround: 5 layers at 4 bits ({(r.stdout + r.stderr).strip()[-300:]})")
    if r.returncode:
        return
    buf = open(dump, "rb").read()
    off = 0
    for layer in range(5):
        O, Kg, groups, P, nscale = np.frombuffer(buf, np.int64, 5, off)
        off += 40

        def take(n):
            nonlocal off
            a = np.frombuffer(buf, np.float32, int(n), off)
            off += 4 * int(n)
            return a

        w = take(O * Kg).reshape(O, Kg)
        H = take(groups * Kg * Kg)
        amax = take(nscale)
        curve = take(iters)
        out = take(O * Kg).reshape(O, Kg)
        tc, tfinal = adaround_torch(w.astype(np.float64), H.astype(np.float64), float(P),
                                    np.broadcast_to(amax, (O,)).copy(), 4, iters, int(groups))
        rel = np.abs(curve - tc) / np.maximum(np.abs(tc), 1e-3 * np.abs(tc).max())
        q = 7
        s = (np.float32(q) / np.broadcast_to(amax, (O,))).astype(np.float32)[:, None]
        Hm = H.astype(np.float64).reshape(groups, Kg, Kg)
        D = (out.astype(np.float64) - w).reshape(groups, O // groups, Kg)
        cfinal = float(np.einsum("gok,gkl,gol->", D, Hm, D) / P)
        Dn = ((np.rint(np.clip(w * s, -q, q)) / s).astype(np.float64) - w).reshape(groups, -1, Kg)
        nearest = float(np.einsum("gok,gkl,gol->", Dn, Hm, Dn) / P)
        # single weights flip a few steps apart while beta anneals: the curves meet again
        area = float(np.abs(curve - tc).sum() / np.abs(tc).sum())
        check(np.median(rel) < 1e-2 and area < 3e-2,
              f"adaround layer {layer} ({O}x{Kg}, {groups} groups): loss curve = PyTorch's "
              f"(relative difference: median {np.median(rel):.1e}, over the whole curve "
              f"{area:.1e}, largest {rel.max():.1e})")
        check(cfinal <= tfinal * 1.01 + 1e-9 and cfinal <= nearest * (1 + 1e-6),
              f"adaround layer {layer}: reconstruction error {cfinal:.4g} vs PyTorch "
              f"{tfinal:.4g}, nearest {nearest:.4g}")


def ort_worst_db(tmp, src, f32, q, names, folder=images, level="all"):
    """Worst output SQNR of q against f32, both in ONNX Runtime (graph
    optimizations at level), signal and error summed over the photos
    (preprocessed by qcal infer for src)."""
    sig = err = None
    for n in names:
        x = os.path.join(tmp, "ox.npy")
        run(qcal, "infer", src, "--image", os.path.join(folder, n), "--save-input", x, "-o",
            os.path.join(tmp, "o.npz"))
        a, b = ort(f32, x, os.path.join(tmp, "oa")), ort(q, x, os.path.join(tmp, "ob"), level)
        s_ = [float((u ** 2).sum()) for u in a]
        e_ = [float(((u - v) ** 2).sum()) for u, v in zip(a, b)]
        sig = s_ if sig is None else [u + v for u, v in zip(sig, s_)]
        err = e_ if err is None else [u + v for u, v in zip(err, e_)]
    return min(10 * np.log10(u / v) if v else float("inf") for u, v in zip(sig, err))


def target_in_ort(tmp, src, folder, what, args, level="all"):
    """qcal quantize src --target-db 30 calibrated on 8 photos of folder,
    then the written file against the float model in ONNX Runtime on the
    held-out ones: (the --json mixed_precision record, dB), or (None, None)
    when quantize failed (checked)."""
    out, js = os.path.join(tmp, "mp.onnx"), os.path.join(tmp, "mp.json")
    r = run(qcal, "quantize", src, "--images", folder, "--calib", "8", *args, "--target-db", "30",
            "-o", out, "--json", js)
    check(r.returncode == 0, f"target-db{what}: runs ({r.stderr.strip()[-200:]})")
    if r.returncode:
        return None, None
    mp = json.load(open(js))["repair"]["mixed_precision"]
    f32 = os.path.join(tmp, "mp32.onnx")
    run(qcal, "quantize", src, "--method", "none", "-o", f32)
    return mp, ort_worst_db(tmp, src, f32, out, oracle.held_out(folder, 8), folder, level)


def check_mixed(tmp):
    mp, db = target_in_ort(tmp, os.path.join(models, "facemesh.json"), images, "", [])
    if mp is None:
        return
    check(db >= 30 and mp["weight_fraction_int8"] >= 0.75,
          f"target-db 30 on facemesh: ONNX Runtime {db:.1f} dB on the held-out photos (qcal "
          f"{mp['reached_db']:.1f}), {100 * mp['weight_fraction_int8']:.1f}% of the weights int8, "
          f"{len(mp['kept_float'])} units float")


def check_mixed_file(tmp):
    """handlandmark-full on hand crops amplifies float rounding: the search's
    simulation and the written file differ by ~2 dB, so the file is measured
    and the search run again while it falls short."""
    cache = os.path.dirname(images)
    hands = os.path.join(tmp, "hand_crops")
    for d in ("people", "hands"):
        run(qcal, "crops", "--kind", "hand", "--images", os.path.join(cache, d), "-o", hands)
    mp, db = target_in_ort(tmp, os.path.join(models, "handlandmark-full.json"), hands,
                           " on handlandmark-full", ["--method", "mse"], "disabled")
    if mp is None:
        return
    n = len(os.listdir(hands))
    check(n >= 16 and mp["file_db"] >= 30 and db >= 30,
          f"target-db 30 on handlandmark-full ({n - 8} held-out hand crops): {mp['searches']} "
          f"searches, the search's simulation {mp['reached_db']:.1f} dB, the file as written "
          f"{mp['file_db']:.1f} dB in qcal and {db:.1f} dB in ONNX Runtime (optimizations off)")


def h5col(t, name):
    v = t[name]
    return list(v.asstr()[()]) if v.dtype.kind == "O" else list(v[()])


def method_args(label):
    return ["--method", "percentile", "--percentile", label[3:]] if label.startswith("pct") \
        else ["--method", label]


def check_sweep_zoo(tmp):
    import h5py
    zf = os.path.join(tmp, "zoo.h5")
    r = run(qcal, "zoo", "--models", models, "--images", images, "--networks", "emotion",
            "--calib", "4", "--held", "12", "--repair", "cle,bias", "-o", zf)
    check(r.returncode == 0, f"zoo --repair cle,bias: runs ({r.stderr.strip()[-200:]})")
    if r.returncode:
        return
    f = h5py.File(zf, "r")
    z, n = f["zoo"], f["zoo_networks"]
    rep, wb, wg, act = (h5col(z, c) for c in ("repair", "weight_bits", "weight_granularity",
                                               "act_method"))
    db, out = h5col(z, "sqnr_db"), h5col(z, "output")
    rows = [i for i in range(len(rep)) if rep[i] == "cle,bias"]
    confs = {(wb[i], wg[i]) for i in rows}
    check(confs == {(8, "per-channel"), (8, "per-tensor"), (4, "per-channel")}
          and len(rows) == 3 * len(set(out)) and len(rep) > len(rows),
          f"zoo: repaired rows for {sorted(confs)} beside {len(rep) - len(rows)} plain rows")
    worst = {c: min(db[i] for i in rows if (wb[i], wg[i]) == c) for c in confs}
    cols = {(8, "per-channel"): "repaired_sqnr_db", (8, "per-tensor"): "repaired_per_tensor_sqnr_db",
            (4, "per-channel"): "repaired_w4_sqnr_db"}
    check(all(abs(h5col(n, cols[c])[0] - worst[c]) < 1e-9 for c in confs if c in cols)
          and h5col(n, "needed")[0], f"zoo_networks: repaired columns {worst}, needed: "
          f"{h5col(n, 'needed')[0]}")
    # the repaired per-tensor configuration, written by qcal quantize on the same split
    # emotion reads face crops: the zoo measured it on those qcal crops makes
    pt = [i for i in rows if (wb[i], wg[i]) == (8, "per-tensor")]
    src = os.path.join(models, "emotion.json")
    crops = os.path.join(tmp, "crops")
    run(qcal, "crops", "--models", models, "-o", crops)
    q, f32 = os.path.join(tmp, "emo_pt.onnx"), os.path.join(tmp, "emo32.onnx")
    r = run(qcal, "quantize", src, "--images", crops, "--calib", "4", *method_args(act[pt[0]]),
            "--weights", "per-tensor", "--placement", "weighted", "--repair", "cle,bias", "-o", q)
    run(qcal, "quantize", src, "--method", "none", "-o", f32)
    # optimizations disabled: the file as written. ORT's optimized graph of this model (its
    # QDQ propagation duplicates DequantizeLinear nodes) gives 3.6 dB more on these crops;
    # qcal's qdq engine equals the unoptimized run (measured; the cause is not traced)
    ort_db = ort_worst_db(tmp, src, f32, q, onnx_zoo.held_photos(crops, 4, 12), crops, "disabled")
    check(r.returncode == 0 and abs(ort_db - worst[(8, "per-tensor")]) < 1.0,
          f"zoo repaired per-tensor ({act[pt[0]]}): qcal {worst[(8, 'per-tensor')]:.2f} dB, "
          f"ONNX Runtime (graph optimizations off) on qcal quantize's file {ort_db:.2f} dB")
    rr = run(qcal, "report", zf, "-o", os.path.join(tmp, "zrep"))
    svg = os.path.join(tmp, "zrep", "zoo_heatmap.svg")
    body = open(svg).read() if os.path.exists(svg) else ""
    check(rr.returncode == 0 and body and "<image" not in body,
          "zoo heatmap: discrete cells, no interpolated bitmap")
    sf = os.path.join(tmp, "sw.h5")
    r = run(qcal, "sweep", "--model", src, "--images", images, "--no-synthetic", "--calib", "4",
            "--held", "4", "--repair", "cle", "-o", sf)
    ok = r.returncode == 0
    if ok:
        e = h5py.File(sf, "r")["e2e_outputs"]
        rp, eo = h5col(e, "repair"), h5col(e, "output")
        ok = rp.count("cle") == 12 * len(set(eo)) and rp.count("") == 20 * len(set(eo))
    check(ok, f"sweep --repair cle: 12 repaired configurations beside the 20 plain ones "
              f"({r.stderr.strip()[-200:]})")


def check_bad(tmp):
    src = os.path.join(tmp, "pairs.onnx")
    out = os.path.join(tmp, "bad.onnx")
    cases = [(["--images", images, "--repair", "cle,nope"], "unknown repair 'nope'"),
             (["--images", images, "--target-db", "500"], "--target-db"),
             (["--method", "none", "--repair", "bias"], "only cle"),
             (["--images", images, "--weight-bits", "9"], "--weight-bits")]
    for args, needle in cases:
        r = run(qcal, "quantize", src, *args, "-o", out)
        check(r.returncode == 2 and needle in r.stderr and r.stderr.count("\n") == 1
              and not os.path.exists(out), f"bad input {args[-2:]}: exit 2, one line: "
              f"{r.stderr.strip()}")
    for cmd, needle in [(["zoo", "--networks", "emotion", "--repair", "nope"], "unknown repair"),
                        (["sweep", "--no-network", "--repair", "cle"], "--no-network"),
                        (["zoo", "--networks", "emotion", "--adaround-iters", "5"], "needs")]:
        o = os.path.join(tmp, "bad.h5")
        r = run(qcal, *cmd, "-o", o)
        check(r.returncode == 2 and needle in r.stderr and r.stderr.count("\n") == 1
              and not os.path.exists(o), f"bad input {' '.join(cmd)}: exit 2, one line: "
              f"{r.stderr.strip()}")


with tempfile.TemporaryDirectory() as tmp:
    check_cle(tmp)
    check_bias(tmp)
    check_absorb(tmp)
    check_bias_bn(tmp)
    check_adaround(tmp)
    check_mixed(tmp)
    check_mixed_file(tmp)
    check_sweep_zoo(tmp)
    check_bad(tmp)
check.finish()
