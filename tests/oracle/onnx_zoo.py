"""torchvision architectures exported to ONNX by Debian's torch (opset 13,
seeded random weights, randomised BatchNorm statistics, eval mode), cached
with their input and torch's own output. Shared by the agreement test and
the latency benchmark; a test oracle, never a product dependency."""
import os
import subprocess

import numpy as np

MODELS = os.environ.get("QCAL_ONNX_MODELS",
                        "resnet18 mobilenet_v2 mobilenet_v3_small efficientnet_b0").split()


def cache_dir():
    c = os.environ.get("QCAL_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "qcal")
    return c


def export(name, folder=None):
    """Paths (model, input, torch output), exporting on first use."""
    import torch
    import torchvision
    folder = folder or os.path.join(cache_dir(), "onnx-models", "torch-" + torch.__version__)

    def make():
        torch.manual_seed(0)
        m = getattr(torchvision.models, name)(weights=None).eval()
        with torch.no_grad():
            for mod in m.modules():
                if isinstance(mod, torch.nn.Linear) and not mod.weight.any():
                    mod.weight.normal_(0, 0.02)  # ViT's zero-initialised head
                if isinstance(mod, torch.nn.BatchNorm2d):
                    mod.running_mean.uniform_(-0.1, 0.1)
                    mod.running_var.uniform_(0.5, 1.5)
                    mod.weight.uniform_(0.5, 1.5)
                    mod.bias.uniform_(-0.1, 0.1)
        return m, torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    return export_cached(name, folder, make)


def export_cached(name, folder, make):
    """Paths (model, input, torch output) in folder; on first use, make()
    gives the eval-mode module and its input, exported at opset 13 (with
    gradients enabled: torch's fused attention fast path, which has no ONNX
    export, stays off) and run by torch for the reference output."""
    import torch
    os.makedirs(folder, exist_ok=True)
    model, x_path, y_path = (os.path.join(folder, name + s)
                             for s in (".onnx", "_x.npy", "_torch.npy"))
    if all(os.path.exists(p) for p in (model, x_path, y_path)):
        return model, x_path, y_path
    m, x = make()
    tmp = model + ".tmp"
    torch.onnx.export(m, x, tmp, opset_version=13, input_names=["input"],
                      output_names=["logits"])
    with torch.no_grad():
        y = m(x).numpy()
    np.save(x_path, x.numpy())
    np.save(y_path, y)
    os.replace(tmp, model)
    return model, x_path, y_path


def peers(source_root):
    return subprocess.run([os.path.join(source_root, "tests/oracle/peers.sh")], check=True,
                          capture_output=True, text=True).stdout.strip()


def ort_run(source_root, peers_dir, model, x_path, prefix, threads=2, repeat=1, optimized=None,
            level="all"):
    """ONNX Runtime's outputs (list of arrays) and median latency (ms);
    optimized: a path to save the graph ORT runs after its optimizations;
    level: its graph optimizations, all or disabled (the file as written)."""
    import json
    env = dict(os.environ, QCAL_PEERS=peers_dir)
    if optimized:
        env["QCAL_ORT_OPTIMIZED"] = optimized
    r = subprocess.run(["node", os.path.join(source_root, "tests/oracle/ort_run.js"), model,
                        x_path, prefix, str(threads), str(repeat), level],
                       env=env, check=True, capture_output=True, text=True)
    info = json.loads(r.stdout.strip().splitlines()[-1])
    outs = [np.load(f"{prefix}{i}.npy") for i in range(len(info["outputs"]))]
    return outs, info["latency_ms"]


def qcal_run(qcal, model, x_path, out, threads=2, repeat=1):
    import json
    r = subprocess.run([qcal, "infer", model, "--input", x_path, "-o", out, "--threads",
                        str(threads), "--repeat", str(repeat)],
                       check=True, capture_output=True, text=True)
    info = json.loads(r.stdout)
    z = np.load(out)
    return [z[o["name"]] for o in info["outputs"]], info["latency_ms"]


def sqnr_db(ref, test):
    ref = np.asarray(ref, dtype=np.float64)
    err = ref - np.asarray(test, dtype=np.float64)
    e = float((err ** 2).sum())
    return float("inf") if e == 0 else 10 * np.log10(float((ref ** 2).sum()) / e)


def held_photos(folder, ncal, nheld):
    """The held-out photos of qcal_image_split (datasets/image_dir.c) over the
    sorted image files of folder (all of them decode)."""
    ext = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tga", ".ppm", ".pgm", ".JPG", ".PNG")
    names = sorted(n for n in os.listdir(folder) if not n.startswith(".") and n.endswith(ext))
    calib, held = 0, []
    for k, n in enumerate(names):
        if calib < ncal and (k % 2 == 0 or len(names) - k <= ncal - calib):
            calib += 1
        elif len(held) < nheld:
            held.append(n)
    return held
