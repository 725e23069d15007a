#!/usr/bin/python3
"""Training speed of torchvision's eager models, to set beside
bench/architecture_benchmark (fedmi's TorchScript models). A hand check,
never a build or test dependency. Same protocol: synthetic noise, two
classes, Adam at lr 1e-3, cross-entropy, one warm-up batch, then `batches`
timed batches; images per second.

    /usr/bin/python3 bench/pytorch_train_speed.py --threads 2 --batch 16 --batches 3

`cnn` is fedmi's built-in network (client/ml/architectures.cc) written as an
eager module, trained as LocalModel::Train trains it: uint8 images held in
memory, each batch converted and normalized ((x/255 - 0.5)/0.5), shuffled:

    /usr/bin/python3 bench/pytorch_train_speed.py --threads 2 --batch 32 \
        --batches 100 --channels 1 --side 28 cnn
"""
import argparse
import time

import torch
import torchvision

DEFAULT_SIDE = {"densenet121": 224, "resnet50": 224, "mobilenet_v2": 224, "cnn": 28}


class Cnn(torch.nn.Module):
    """fedmi's `cnn`: three blocks of conv 3x3 (no bias), max-pool, BatchNorm,
    ReLU at 16, 32 and 64 channels, then fc 128 with ReLU and dropout 0.25,
    and a bias-free classifier."""

    def __init__(self, channels, side, classes=2):
        super().__init__()
        layers, width_in = [], channels
        for width in (16, 32, 64):
            layers += [torch.nn.Conv2d(width_in, width, 3, 1, 1, bias=False),
                       torch.nn.MaxPool2d(2), torch.nn.BatchNorm2d(width), torch.nn.ReLU()]
            width_in = width
        self.features = torch.nn.Sequential(*layers)
        self.fc1 = torch.nn.Linear(width_in * (side // 8) ** 2, 128)
        self.fc2 = torch.nn.Linear(128, classes, bias=False)

    def forward(self, x):
        x = torch.flatten(self.features(x), 1)
        x = torch.nn.functional.dropout(torch.relu(self.fc1(x)), 0.25, self.training)
        return self.fc2(x)


def time_cnn(args, side):
    """Images per second over `batches` batches of one shuffled epoch."""
    model = Cnn(args.channels, side)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    count = args.batch * args.batches
    index = torch.arange(count * side * side * args.channels)
    images = (index * 37 % 251).to(torch.uint8).reshape(count, args.channels, side, side)
    labels = torch.arange(count) % 2

    def epoch(n):
        order = torch.randperm(n)
        for begin in range(0, n, args.batch):
            picked = order[begin:begin + args.batch]
            x = (images[picked].float() / 255 - 0.5) / 0.5
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), labels[picked])
            loss.backward()
            optimizer.step()

    epoch(args.batch)  # warm-up
    start = time.perf_counter()
    epoch(count)
    seconds = time.perf_counter() - start
    parameters = sum(p.numel() for p in model.parameters())
    return parameters, count / seconds


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--side", type=int, default=0)
    parser.add_argument("archs", nargs="*", default=list(DEFAULT_SIDE))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print("arch,side,batch,threads,parameters,images_per_s")
    for arch in args.archs:
        side = args.side or DEFAULT_SIDE[arch]
        if arch == "cnn":
            parameters, rate = time_cnn(args, side)
            print(f"cnn,{side},{args.batch},{args.threads},{parameters},{rate:.2f}", flush=True)
            continue
        model = getattr(torchvision.models, arch)(num_classes=2)
        if args.channels != 3:
            raise SystemExit("only 3 channels: torchvision's first conv takes RGB")
        model.train()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        generator = torch.Generator().manual_seed(0)

        def step():
            x = torch.rand(args.batch, args.channels, side, side, generator=generator)
            y = torch.arange(args.batch) % 2
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()

        step()  # warm-up
        start = time.perf_counter()
        for _ in range(args.batches):
            step()
        seconds = time.perf_counter() - start
        parameters = sum(p.numel() for p in model.parameters())
        print(f"{arch},{side},{args.batch},{args.threads},{parameters},"
              f"{args.batch * args.batches / seconds:.2f}", flush=True)


if __name__ == "__main__":
    main()
