#!/usr/bin/env python3
"""A small real AI workload to measure: scikit-learn's handwritten digits (8x8 images, a
dataset the package ships: nothing is downloaded), a small neural network trained on them,
then batched inference over the held-out images.

    python3 examples/digits.py train --out /tmp/digits.pkl
    wattprint bench --runs 5 --parameter-list batch 1,8,32,128 -- \
        'python3 examples/digits.py infer --model /tmp/digits.pkl --batch {batch}'

`infer` classifies `--count` images (the test split, over and over) in batches of
`--batch`, and declares them to wattprint (`inferences=N` in `$WATTPRINT_WORK_FILE`) so
the report and the bench give joules per inference. Bigger batches amortise Python's
per-call overhead: less time and energy per image, until the batch is large enough that
nothing more is saved.
"""

import argparse
import os
import pickle
import sys
import time


def data():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = x / 16.0  # pixel intensities 0..16 -> 0..1
    return train_test_split(x, y, test_size=0.25, random_state=0)


def train(args):
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    # A fixed epoch budget is the point (a repeatable workload); the test accuracy printed
    # below says how good the network got.
    warnings.filterwarnings("ignore", category=ConvergenceWarning)

    x_train, x_test, y_train, y_test = data()
    model = MLPClassifier(
        hidden_layer_sizes=(args.hidden,),
        max_iter=args.epochs,
        random_state=0,
    )
    start = time.perf_counter()
    model.fit(x_train, y_train)
    took = time.perf_counter() - start
    accuracy = model.score(x_test, y_test)
    with open(args.out, "wb") as f:
        pickle.dump(model, f)
    declare("inferences", 0)
    print(
        f"trained on {len(x_train)} images in {took:.2f} s; "
        f"test accuracy {accuracy:.3f}; model in {args.out}",
        file=sys.stderr,
    )


def infer(args):
    if args.batch < 1 or args.count < 1:
        sys.exit("digits.py: --batch and --count must be 1 or more")
    with open(args.model, "rb") as f:
        model = pickle.load(f)
    _, x_test, _, y_test = data()
    n_test = len(x_test)
    done = correct = 0
    start = time.perf_counter()
    while done < args.count:
        k = min(args.batch, args.count - done)
        idx = [(done + i) % n_test for i in range(k)]
        predicted = model.predict(x_test[idx])
        correct += int((predicted == y_test[idx]).sum())
        done += k
    took = time.perf_counter() - start
    declare("inferences", done)
    print(
        f"batch {args.batch}: {done} images in {took:.3f} s "
        f"({took / done * 1e6:.1f} us each), accuracy {correct / done:.3f}",
        file=sys.stderr,
    )


def declare(key, n):
    """Tells wattprint the work done, when it runs us (a no-op otherwise)."""
    path = os.environ.get("WATTPRINT_WORK_FILE")
    if path and n:
        with open(path, "a") as f:
            f.write(f"{key}={n}\n")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train the network and save it")
    t.add_argument("--out", required=True, help="where to write the model (pickle)")
    t.add_argument("--hidden", type=int, default=64, help="hidden units (64)")
    t.add_argument("--epochs", type=int, default=200, help="epochs (200)")
    i = sub.add_parser("infer", help="batched inference with a saved model")
    i.add_argument("--model", required=True, help="the model written by `train`")
    i.add_argument("--batch", type=int, default=32, help="images per call (32)")
    i.add_argument("--count", type=int, default=2000, help="images to classify (2000)")
    args = p.parse_args()
    train(args) if args.cmd == "train" else infer(args)


if __name__ == "__main__":
    main()
