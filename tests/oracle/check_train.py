#!/usr/bin/env python3
"""qcal's gradients against PyTorch autograd (Debian python3-torch): the
networks of analysis/nets.inc written in PyTorch (qat_nets.py), seeded,
exported to ONNX, and `qcal qat MODEL.onnx --dump-grads` on the first
training batch; PyTorch then computes the loss and every parameter's
gradient on the same batch (BatchNorm in training mode) and the two must
agree to float32 rounding.

  check_train.py QCAL_BIN"""
import os, subprocess, sys, tempfile, zipfile, io

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import oracle  # noqa: E402
from qat_nets import NETS  # noqa: E402

check = oracle.Checks()




def load_npz(path):
    out = {}
    with zipfile.ZipFile(path) as z:
        for n in z.namelist():
            out[n[:-4]] = np.load(io.BytesIO(z.read(n)))
    return out


def export(model, path):
    model.eval()
    x = torch.zeros(1, 1, 28, 28)
    torch.onnx.export(model, x, path, opset_version=13, do_constant_folding=False,
                      input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "n"}, "logits": {0: "n"}})


def compare(net, model, d, by_order):
    """PyTorch's loss and gradients on qcal's batch; with by_order, qcal's
    parameter values (its own initialisation) are copied in first."""
    qnames = [k[6:] for k in d if k.startswith("param/")]
    params = list(model.named_parameters())
    if by_order:
        check(len(qnames) == len(params), f"{net}: {len(qnames)} parameters, PyTorch has {len(params)}")
        with torch.no_grad():
            for (name, p), q in zip(params, qnames):
                p.copy_(torch.from_numpy(d["param/" + q]).reshape(p.shape))
        pairs = list(zip([n for n, _ in params], qnames))
    else:
        pairs = [(n, n) for n, _ in params]
    model.train()
    x, y = torch.from_numpy(d["x"]), torch.from_numpy(d["y"])
    loss = nn.CrossEntropyLoss()(model(x), y)
    loss.backward()
    check(abs(loss.item() - float(d["loss"])) <= 1e-5 * max(1.0, abs(loss.item())),
          f"{net}: loss {float(d['loss']):.7f} vs PyTorch {loss.item():.7f}")
    grads = dict(model.named_parameters())
    good, worst = 0, 0.0
    for tname, qname in pairs:
        if "grad/" + qname not in d:
            check(False, f"{net}: qcal has no gradient for '{qname}'")
            continue
        g = grads[tname].grad.numpy()
        q = d["grad/" + qname].reshape(g.shape)
        scale = max(float(np.abs(g).max()), 1e-6)
        err = float(np.abs(q - g).max()) / scale
        worst = max(worst, err)
        if err > 1e-3:
            check(False, f"{net}: d{qname}: max error {err:.2e} of max |g| {scale:.3g}")
        else:
            good += 1
    check(good == len(params), f"{net}: {good} of {len(params)} parameter gradients within 1e-3 "
          f"of PyTorch's largest (relative; worst {worst:.1e})")
    check(len(qnames) == len(params), f"{net}: qcal trains the {len(params)} parameters PyTorch has")


def dump(qcal, args, npz):
    r = subprocess.run([qcal, "qat", *args, "--dump-grads", npz, "--batch", "16", "--threads", "2"],
                       capture_output=True, text=True)
    if r.returncode:
        check(False, f"qcal qat {' '.join(args)} --dump-grads: {r.stderr.strip()}")
        return None
    return load_npz(npz)


def main():
    qcal = sys.argv[1]
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        # the networks qcal defines in C, their weights copied into PyTorch's
        for net in NETS:
            d = dump(qcal, ["--net", net], os.path.join(tmp, f"{net}.npz"))
            if d is not None:
                torch.manual_seed(0)
                compare(net, NETS[net](), d, by_order=True)
        # a classifier exported by torch.onnx, trained through `qcal qat MODEL.onnx`
        torch.manual_seed(0)
        model = NETS["cnn"]()
        path = os.path.join(tmp, "torch_cnn.onnx")
        export(model, path)
        d = dump(qcal, [path], os.path.join(tmp, "torch_cnn.npz"))
        if d is not None:
            compare("torch_cnn.onnx", model, d, by_order=False)
    check.finish()


if __name__ == "__main__":
    main()
