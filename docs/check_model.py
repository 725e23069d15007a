#!/usr/bin/python3
"""Hand check that a fedmi model file runs the same in PyTorch as in fedmi.

Loads a TorchScript file fedmi wrote (`fedmi model export --out m.pt`, or
LocalModel::SaveTorchScript) with torch.jit.load alone, runs it on a split of
a MedMNIST-style .npz and compares P(class 1) with the CSV that
`fedmi model predict` wrote for the same file and split (column
prob_pneumonia). Prints the largest absolute difference. Needs torch and
numpy only; no test or build uses it.

fedmi reads images at the model's size, resizing when the .npz holds another
size; this script does not resize. For a model whose side differs from the
.npz's, first write a copy at the model's size and give that copy to both:

    /usr/bin/python3 docs/check_model.py --resize data.npz --side 64 --out data64.npz
    fedmi model predict --model m.pt --data data64.npz --split test --out p.csv
    /usr/bin/python3 docs/check_model.py --model m.pt --data data64.npz --split test --csv p.csv
"""
import argparse
import csv

import numpy as np
import torch


def resize(path, side, out):
    arrays = dict(np.load(path))
    for key in list(arrays):
        if key.endswith("_images"):
            images = torch.from_numpy(arrays[key]).float()
            if images.dim() == 3:
                images = images.unsqueeze(3)
            images = images.permute(0, 3, 1, 2)
            resized = torch.nn.functional.interpolate(images, size=(side, side), mode="bilinear",
                                                      align_corners=False)
            resized = resized.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
            if resized.size(3) == 1:
                resized = resized.squeeze(3)
            arrays[key] = resized.numpy()
    np.savez(out, **arrays)
    print(f"wrote {out} at {side}x{side}")


def check(model_path, data, split, csv_path, batch):
    model = torch.jit.load(model_path)
    model.eval()
    height, width = model.fedmi_height, model.fedmi_width
    channels = model.fedmi_channels
    arrays = np.load(data)
    images = torch.from_numpy(arrays[f"{split}_images"])
    labels = arrays[f"{split}_labels"].reshape(-1)
    if tuple(images.shape[1:3]) != (height, width):
        raise SystemExit(f"{data} holds {tuple(images.shape[1:3])} images, the model takes "
                         f"{height}x{width}: write a copy with --resize first")
    if not hasattr(model, "predict_proba"):
        raise SystemExit(f"{model_path} was written before fedmi models had predict_proba: "
                         "export it again")
    # The raw pixel values: the file's own preprocess normalizes them (and
    # repeats a grey image for a colour model).
    if images.dim() == 4:
        images = images.permute(0, 3, 1, 2)
    probs = []
    with torch.no_grad():
        for start in range(0, images.size(0), batch):
            probs.append(model.predict_proba(images[start:start + batch])[:, 1])
    ours = torch.cat(probs).numpy()
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    theirs = np.array([float(r["prob_pneumonia"]) for r in rows])
    csv_labels = np.array([int(r["label"]) for r in rows])
    if len(theirs) != len(ours) or not (csv_labels == labels).all():
        raise SystemExit(f"{csv_path} has {len(theirs)} rows for {len(ours)} images "
                         "(or other labels): another split?")
    print(f"{model_path} ({model.fedmi_arch}, {height}x{width}x{channels}) on {split}: "
          f"{len(ours)} images, max |P_torch - P_fedmi| = {np.abs(ours - theirs).max():.3g}")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model")
    parser.add_argument("--data", required=False)
    parser.add_argument("--split", default="test")
    parser.add_argument("--csv")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--resize", help="an .npz to write a resized copy of")
    parser.add_argument("--side", type=int)
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.resize:
        resize(args.resize, args.side, args.out)
    else:
        check(args.model, args.data, args.split, args.csv, args.batch)


if __name__ == "__main__":
    main()
