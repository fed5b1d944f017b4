"""The networks of analysis/nets.inc in PyTorch (Debian python3-torch), the
same layers and shapes: the peer for training speed and the autograd
oracle for qcal's gradients."""
import torch
import torch.nn as nn


def cnn(classes=10):
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, classes))


def mobilenet(classes=10):
    layers = [nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU6()]
    c = 16
    for out, stride in [(32, 1), (64, 2), (64, 1), (128, 2), (128, 1)]:
        layers += [nn.Conv2d(c, c, 3, stride, 1, groups=c, bias=False), nn.BatchNorm2d(c), nn.ReLU6(),
                   nn.Conv2d(c, out, 1, bias=False), nn.BatchNorm2d(out), nn.ReLU6()]
        c = out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, classes)]
    return nn.Sequential(*layers)


NETS = {"cnn": cnn, "mobilenet": mobilenet}
