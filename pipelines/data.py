"""Example data: scikit-learn's breast cancer set, and a synthetic generator of the same shape.

`python -m pipelines.data --rows 1000000 -o big.parquet` writes a large synthetic batch that
satisfies the packaged contract, for runs at scale.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np
import pandas as pd

LABEL = "target"


def _snake(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def breast_cancer() -> pd.DataFrame:
    """The 569-row Wisconsin breast cancer set shipped by scikit-learn, snake_case columns."""
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [_snake(c) for c in frame.columns]
    return frame


def synthetic(rows: int, *, seed: int = 0, shift: float = 0.0) -> pd.DataFrame:
    """`rows` rows drawn per class from the breast cancer set's means and covariances.

    `shift` moves every feature by that many standard deviations (a drifted batch).
    Values are clipped at zero so the batch stays inside the contract's ranges.
    """
    base = breast_cancer()
    features = [c for c in base.columns if c != LABEL]
    rng = np.random.default_rng(seed)
    labels = rng.random(rows) < (base[LABEL] == 1).mean()
    out = np.empty((rows, len(features)))
    for cls in (0, 1):
        part = base.loc[base[LABEL] == cls, features]
        mask = labels == bool(cls)
        out[mask] = rng.multivariate_normal(
            part.mean(), part.cov(), size=int(mask.sum()), method="cholesky"
        )
    out += shift * base[features].std().to_numpy()
    frame = pd.DataFrame(np.clip(out, 0.0, None), columns=features)
    frame[LABEL] = labels.astype("int64")
    return frame


def write_example(path: Path) -> Path:
    """Write the breast cancer set as CSV to `path` (a file) and return it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    breast_cancer().to_csv(path, index=False)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=0, help="synthetic rows (0 = the real set)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shift", type=float, default=0.0, help="drift in standard deviations")
    parser.add_argument("-o", "--output", type=Path, required=True, help=".csv or .parquet")
    args = parser.parse_args(argv)
    frame = synthetic(args.rows, seed=args.seed, shift=args.shift) if args.rows else breast_cancer()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    if args.output.suffix == ".parquet":
        frame.to_parquet(args.output, index=False)
    else:
        frame.to_csv(args.output, index=False)
    print(f"wrote {len(frame)} rows to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
