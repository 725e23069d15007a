#!/usr/bin/python3
"""Writes the reference tensor lists of tests/client/ml/torchvision_names_test.cc.

A hand check, never a build or test dependency: run it once with a Python
that has torch and torchvision (Debian: python3-torchvision) and check the
lists in. Each line is `param|buffer name shape` (shape as AxBxC), in
registration order: the order fedmi's wire uses (parameters, then buffers).
torchvision's int64 num_batches_tracked buffers are left out, as fedmi's
models do not carry them (the wire holds float tensors).

    /usr/bin/python3 bench/torchvision_names.py tests/client/ml/testdata
"""
import collections
import os
import sys

import torch
import torch.nn as nn
import torchvision


class UNet(nn.Module):
    """The U-Net of torch.hub mateuszbuda/brain-segmentation-pytorch (unet.py),
    copied so that this script needs no network."""

    def __init__(self, in_channels=3, out_channels=1, init_features=32):
        super().__init__()
        f = init_features
        self.encoder1 = UNet._block(in_channels, f, name="enc1")
        self.pool1 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.encoder2 = UNet._block(f, f * 2, name="enc2")
        self.pool2 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.encoder3 = UNet._block(f * 2, f * 4, name="enc3")
        self.pool3 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.encoder4 = UNet._block(f * 4, f * 8, name="enc4")
        self.pool4 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.bottleneck = UNet._block(f * 8, f * 16, name="bottleneck")
        self.upconv4 = nn.ConvTranspose2d(f * 16, f * 8, kernel_size=2, stride=2)
        self.decoder4 = UNet._block((f * 8) * 2, f * 8, name="dec4")
        self.upconv3 = nn.ConvTranspose2d(f * 8, f * 4, kernel_size=2, stride=2)
        self.decoder3 = UNet._block((f * 4) * 2, f * 4, name="dec3")
        self.upconv2 = nn.ConvTranspose2d(f * 4, f * 2, kernel_size=2, stride=2)
        self.decoder2 = UNet._block((f * 2) * 2, f * 2, name="dec2")
        self.upconv1 = nn.ConvTranspose2d(f * 2, f, kernel_size=2, stride=2)
        self.decoder1 = UNet._block(f * 2, f, name="dec1")
        self.conv = nn.Conv2d(in_channels=f, out_channels=out_channels, kernel_size=1)

    @staticmethod
    def _block(in_channels, features, name):
        return nn.Sequential(collections.OrderedDict([
            (name + "conv1", nn.Conv2d(in_channels, features, kernel_size=3, padding=1,
                                       bias=False)),
            (name + "norm1", nn.BatchNorm2d(num_features=features)),
            (name + "relu1", nn.ReLU(inplace=True)),
            (name + "conv2", nn.Conv2d(features, features, kernel_size=3, padding=1,
                                       bias=False)),
            (name + "norm2", nn.BatchNorm2d(num_features=features)),
            (name + "relu2", nn.ReLU(inplace=True)),
        ]))


def write(model, path):
    with open(path, "w") as out:
        for kind, named in (("param", model.named_parameters()),
                            ("buffer", model.named_buffers())):
            for name, tensor in named:
                if name.endswith("num_batches_tracked"):
                    continue
                out.write(f"{kind} {name} {'x'.join(str(s) for s in tensor.shape)}\n")


def main():
    folder = sys.argv[1]
    models = {
        "densenet121": torchvision.models.densenet121(num_classes=1000),
        "resnet50": torchvision.models.resnet50(num_classes=1000),
        "mobilenet_v2": torchvision.models.mobilenet_v2(num_classes=1000),
        "unet": UNet(in_channels=3, out_channels=1, init_features=32),
    }
    for name, model in models.items():
        write(model, os.path.join(folder, f"torchvision_{name}.txt"))
        print(name, sum(p.numel() for p in model.parameters()))


if __name__ == "__main__":
    main()
