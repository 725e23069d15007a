#!/usr/bin/python3
"""Training speed of torchvision's eager models, to set beside
bench/architecture_benchmark (fedmi's TorchScript models). A hand check,
never a build or test dependency. Same protocol: synthetic noise, two
classes, Adam at lr 1e-3, cross-entropy, one warm-up batch, then `batches`
timed batches; images per second.

    /usr/bin/python3 bench/pytorch_train_speed.py --threads 2 --batch 16 --batches 3
"""
import argparse
import time

import torch
import torchvision

DEFAULT_SIDE = {"densenet121": 224, "resnet50": 224, "mobilenet_v2": 224}


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
