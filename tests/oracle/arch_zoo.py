"""torchvision classification architectures, one or more per family, exported
to ONNX by Debian's torch for the architecture benchmark
(scripts/bench-architectures.sh): weights seeded, BatchNorm statistics
measured on the natural photos (bare random initialisation gives degenerate
activations), opset 13, eval mode. Cached with a photo as input and torch's
own output. A test oracle, never a product dependency."""
import glob
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import onnx_zoo  # noqa: E402

# (name, family, input size)
ARCHS = [
    ("resnet18", "ResNet", 224),
    ("resnet50", "ResNet", 224),
    ("resnext50_32x4d", "ResNeXt", 224),
    ("wide_resnet50_2", "Wide ResNet", 224),
    ("vgg11_bn", "VGG", 224),
    ("densenet121", "DenseNet", 224),
    ("googlenet", "GoogLeNet", 224),
    ("inception_v3", "Inception v3", 299),
    ("squeezenet1_1", "SqueezeNet", 224),
    ("shufflenet_v2_x0_5", "ShuffleNetV2", 224),
    ("mnasnet0_5", "MNASNet", 224),
    ("mobilenet_v2", "MobileNetV2", 224),
    ("mobilenet_v3_large", "MobileNetV3", 224),
    ("efficientnet_b0", "EfficientNet", 224),
    ("efficientnet_v2_s", "EfficientNetV2", 224),
    ("regnet_x_400mf", "RegNet X", 224),
    ("regnet_y_400mf", "RegNet Y", 224),
    ("convnext_tiny", "ConvNeXt", 224),
    ("vit_b_16", "ViT", 224),
    ("swin_t", "Swin", 224),
]
FAMILY = {n: f for n, f, _ in ARCHS}
SIZE = {n: s for n, _, s in ARCHS}
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def cache_dir():
    return os.environ.get("QCAL_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "qcal")


def photos(images, size):
    """The photos as qcal preprocesses them by default for an NCHW model
    (bilinear resize to the input size, (p/255 - mean)/std)."""
    from PIL import Image
    out = []
    for f in sorted(glob.glob(os.path.join(images, "*"))):
        im = Image.open(f).convert("RGB").resize((size, size), Image.BILINEAR)
        a = (np.asarray(im, dtype=np.float32) / 255 - MEAN) / STD
        out.append(a.transpose(2, 0, 1).astype(np.float32))
    return np.stack(out)


def export(name, images, folder=None):
    """Paths (model, input photo, torch output), exporting on first use."""
    import torch
    import torchvision
    folder = folder or os.path.join(cache_dir(), "arch-models", "torch-" + torch.__version__)

    def make():
        torch.manual_seed(0)
        kw = {"aux_logits": False, "init_weights": True} if name in ("googlenet",
                                                                      "inception_v3") else {}
        m = getattr(torchvision.models, name)(weights=None, **kw).eval()
        x = torch.from_numpy(photos(images, SIZE[name]))
        with torch.no_grad():
            for mod in m.modules():
                if isinstance(mod, torch.nn.Linear) and not mod.weight.any():
                    mod.weight.normal_(0, 0.02)  # ViT's zero-initialised head
            # BatchNorm statistics measured on the photos: only the BN layers
            # in training mode (cumulative averages), dropout and stochastic
            # depth off
            bns = [b for b in m.modules() if isinstance(b, torch.nn.modules.batchnorm._BatchNorm)]
            for b in bns:
                b.reset_running_stats()
                b.momentum = None
                b.train()
            if bns:
                for k in range(0, len(x), 4):
                    m(x[k:k + 4])
        return m.eval(), x[:1]
    return onnx_zoo.export_cached(name, folder, make)


if __name__ == "__main__":
    for n in sys.argv[2:] or [a[0] for a in ARCHS]:
        print(export(n, sys.argv[1]))
