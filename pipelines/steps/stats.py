"""Baseline statistics and drift, accumulated chunk by chunk and merged: memory is bounded by a
chunk, not by the table.

Baseline statistics of one feature (what validate-data and the drift monitor read):

- `mean`, `std`, `min`, `max`, `rows`: exact, from (count, mean, M2) merged with Chan's formula;
- `edges` and `proportions`: decile edges and the share of values between them, for PSI;
- `quantiles`: 101 quantiles (0 %, 1 %, ..., 100 %), the compact reference sample for KS.

Edges and quantiles come from a histogram of `HISTOGRAM_BINS` equal bins between the feature's
minimum and maximum (a second pass, once those are known): an edge is the bin boundary where
the cumulative share first reaches a decile, so the proportions are exact counts; a quantile
is interpolated inside its bin, so it is within one bin width (range / 16,384) of the exact
one. Histograms add up, so statistics merged from chunks equal those of one pass.

Drift of a batch against a baseline needs only counts too: PSI counts the batch's values
between the baseline's edges; the KS statistic against the 101 reference quantiles needs the
batch's empirical CDF at those points alone (the largest gap between two step functions is at
a jump of either). Up to `KS_EXACT_ROWS` values per feature are also kept, so small batches
get scipy's exact KS p-value as before; above that scipy uses the asymptotic distribution, and
so does the streamed statistic.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

EPS = 1e-4
HISTOGRAM_BINS = 16_384
"""Bins between a feature's minimum and maximum for its edges and quantiles."""
EDGE_LEVELS = np.linspace(0, 1, 11)[1:-1]
"""Decile levels of the PSI bin edges."""
SAMPLE_LEVELS = np.linspace(0, 1, 101)
"""Levels of the 101 quantiles kept as a compact reference sample (for KS)."""
KS_EXACT_ROWS = 10_000
"""scipy's `ks_2samp` computes an exact p-value up to this many rows (its MAX_AUTO_N)."""


def _values(values: Any) -> np.ndarray:
    """The non-null values of a column as float64 (text that is not a number counts as null)."""
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    if not pd.api.types.is_numeric_dtype(series.dtype):
        series = pd.to_numeric(series, errors="coerce")
    clean = series.to_numpy(dtype=float, na_value=np.nan)
    nulls = np.isnan(clean)
    return clean[~nulls] if nulls.any() else clean


@dataclass
class Moments:
    """Count, mean, M2 (sum of squared deviations), minimum and maximum; mergeable."""

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    low: float = np.inf
    high: float = -np.inf

    def add(self, values: np.ndarray) -> None:
        if len(values) == 0:
            return
        mean = float(values.mean())
        deviation = values - mean
        other = Moments(len(values), mean, float(np.dot(deviation, deviation)))
        other.low, other.high = float(values.min()), float(values.max())
        self.merge(other)

    def merge(self, other: Moments) -> None:
        if other.count == 0:
            return
        total = self.count + other.count
        delta = other.mean - self.mean
        self.mean += delta * other.count / total
        self.m2 += other.m2 + delta * delta * self.count * other.count / total
        self.count = total
        self.low, self.high = min(self.low, other.low), max(self.high, other.high)


@dataclass
class Histogram:
    """Counts in `bins` equal bins over [low, high] (each bin closed on the left, the last also
    on the right); mergeable by adding counts."""

    low: float
    high: float
    bins: int = HISTOGRAM_BINS
    counts: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.bins = 1 if self.high <= self.low else self.bins
        self.counts = np.zeros(self.bins, dtype=np.int64)
        width = (self.high - self.low) / self.bins
        self.boundaries = self.low + width * np.arange(self.bins + 1)
        self.boundaries[-1] = self.high

    def add(self, values: np.ndarray) -> None:
        if len(values) == 0:
            return
        if self.bins == 1:
            self.counts[0] += len(values)
            return
        width = (self.high - self.low) / self.bins
        index = ((values - self.low) / width).astype(np.int64)
        np.clip(index, 0, self.bins - 1, out=index)
        # the division may round across a boundary: settle each value against the boundaries
        # (boundaries[0] is the minimum, so no value moves below bin 0)
        index -= values < self.boundaries[index]
        index += values >= self.boundaries[index + 1]
        np.minimum(index, self.bins - 1, out=index)  # the maximum stays in the last bin
        self.counts += np.bincount(index, minlength=self.bins)

    def merge(self, other: Histogram) -> None:
        self.counts += other.counts


def finish(moments: Moments, histogram: Histogram | None) -> dict[str, Any]:
    """One feature's baseline statistics from its merged moments and histogram."""
    n = moments.count
    if n == 0 or histogram is None:
        return {"edges": [], "proportions": [1.0], "quantiles": [], "mean": None, "std": None}
    cumulative = np.cumsum(histogram.counts)
    below = np.concatenate([[0], cumulative])  # values below each boundary
    if histogram.bins == 1:
        edges = np.array([histogram.low])
        proportions = np.array([0.0, 1.0])
        quantiles = np.full(len(SAMPLE_LEVELS), histogram.low)
    else:
        # first interior boundary with at least the decile's share of the values below it
        at = np.unique(
            np.clip(np.searchsorted(below, EDGE_LEVELS * n, side="left"), 1, histogram.bins - 1)
        )
        edges = histogram.boundaries[at]
        proportions = np.diff(np.concatenate([[0], below[at], [n]])) / n
        quantiles = _quantiles(histogram, cumulative, n)
    return {
        "edges": edges.tolist(),
        "proportions": proportions.tolist(),
        "quantiles": quantiles.tolist(),
        "mean": moments.mean,
        "std": float(np.sqrt(moments.m2 / n)),
    }


def _order_statistics(histogram: Histogram, cumulative: np.ndarray, ranks: np.ndarray) -> Any:
    """Estimates of the values of 1-based `ranks`: each inside the bin that holds it, spread
    evenly over the bin (so within one bin width of the true value); rank 1 and rank n are the
    exact minimum and maximum."""
    n = int(cumulative[-1])
    inside = np.clip(np.searchsorted(cumulative, ranks, side="left"), 0, histogram.bins - 1)
    before = np.where(inside > 0, cumulative[inside - 1], 0)
    share = (ranks - before - 0.5) / np.maximum(histogram.counts[inside], 1)
    width = histogram.boundaries[inside + 1] - histogram.boundaries[inside]
    value = histogram.boundaries[inside] + np.clip(share, 0, 1) * width
    value = np.where(ranks <= 1, histogram.low, np.where(ranks >= n, histogram.high, value))
    return np.clip(value, histogram.low, histogram.high)


def _quantiles(histogram: Histogram, cumulative: np.ndarray, n: int) -> np.ndarray:
    """The 101 quantiles, interpolated between neighbouring order statistics as numpy's
    default (linear) method does."""
    rank = SAMPLE_LEVELS * (n - 1) + 1
    lower, upper = np.floor(rank), np.ceil(rank)
    low = _order_statistics(histogram, cumulative, lower)
    high = _order_statistics(histogram, cumulative, upper)
    return low + (rank - lower) * (high - low)


class BaselineStatistics:
    """Baseline statistics of several features over chunks: `add_moments` on every chunk (first
    pass), then `add_histograms` on every chunk (second pass), then `result()`."""

    def __init__(self, features: Iterable[str]):
        self.features = list(features)
        self.moments = {name: Moments() for name in self.features}
        self.histograms: dict[str, Histogram] = {}

    def add_moments(self, frame: pd.DataFrame) -> None:
        for name in self.features:
            self.moments[name].add(_values(frame[name]))

    def add_histograms(self, frame: pd.DataFrame) -> None:
        for name in self.features:
            moments = self.moments[name]
            if moments.count == 0:
                continue
            if name not in self.histograms:
                self.histograms[name] = Histogram(moments.low, moments.high)
            self.histograms[name].add(_values(frame[name]))

    def result(self) -> dict[str, dict[str, Any]]:
        return {
            name: finish(self.moments[name], self.histograms.get(name)) for name in self.features
        }


def feature_statistics(values: Any) -> dict[str, Any]:
    """The baseline statistics of one column held in memory (one chunk, both passes)."""
    clean = _values(values)
    stats = BaselineStatistics(["x"])
    frame = pd.DataFrame({"x": clean})
    stats.add_moments(frame)
    stats.add_histograms(frame)
    return stats.result()["x"]


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index between two bin-proportion vectors."""
    e = np.clip(np.asarray(expected, dtype=float), EPS, None)
    a = np.clip(np.asarray(actual, dtype=float), EPS, None)
    return float(np.sum((a - e) * np.log(a / e)))


class FeatureDrift:
    """One feature of a batch against its baseline: PSI bin counts and the empirical CDF at the
    reference quantiles, accumulated chunk by chunk."""

    def __init__(self, reference: Mapping[str, Any]):
        self.edges = np.asarray(reference["edges"], dtype=float)
        self.proportions = reference["proportions"]
        self.reference = np.sort(np.asarray(reference["quantiles"], dtype=float))
        self.points = np.unique(self.reference)
        self.bins = np.zeros(len(self.edges) + 1, dtype=np.int64)
        self.at_or_below = np.zeros(len(self.points), dtype=np.int64)
        self.below = np.zeros(len(self.points), dtype=np.int64)
        self.count = 0
        self.kept: list[np.ndarray] | None = []

    def add(self, values: np.ndarray) -> None:
        if len(values) == 0:
            return
        self.count += len(values)
        self.bins += np.bincount(
            np.searchsorted(self.edges, values, side="right"), minlength=len(self.bins)
        )
        ordered = np.sort(values)
        self.at_or_below += np.searchsorted(ordered, self.points, side="right")
        self.below += np.searchsorted(ordered, self.points, side="left")
        if self.kept is not None:
            self.kept.append(values)
            if self.count > KS_EXACT_ROWS:
                self.kept = None

    def ks_statistic(self) -> float:
        """scipy's two-sided KS statistic of the batch against the reference quantiles."""
        n1, n2 = self.count, len(self.reference)
        reference_cdf = np.searchsorted(self.reference, self.points, side="right") / n2
        # at each reference point, and just below the next one (the batch's largest value in
        # between, where the batch CDF is highest and the reference's has not moved)
        at = self.at_or_below / n1 - reference_cdf
        before_next = np.concatenate([self.below[1:], [n1]]) / n1 - reference_cdf
        first = self.below[0] / n1  # batch values below the smallest reference point
        high = max(float(at.max()), float(before_next.max()), first)
        low = float(np.clip(-at.min(), 0, 1))
        return low if low > high else high

    def result(self, threshold: float) -> dict[str, Any]:
        from scipy.stats import distributions, ks_2samp

        value = psi(self.proportions, self.bins / self.count)
        if self.kept is not None:
            ks = ks_2samp(np.concatenate(self.kept), self.reference)
            statistic, pvalue = float(ks.statistic), float(ks.pvalue)
        else:
            statistic = self.ks_statistic()
            m, n = sorted([float(self.count), float(len(self.reference))], reverse=True)
            pvalue = float(
                np.clip(distributions.kstwo.sf(statistic, np.round(m * n / (m + n))), 0, 1)
            )
        return {
            "psi": round(value, 6),
            "ks_statistic": round(statistic, 6),
            "ks_pvalue": pvalue,
            "drifted": value > threshold,
        }


class DriftAccumulator:
    """Drift of a batch read in chunks against a baseline (`add` each chunk, then `report`)."""

    def __init__(self, baseline: Mapping[str, Any]):
        self.features = {
            name: FeatureDrift(ref)
            for name, ref in baseline["features"].items()
            if len(ref.get("quantiles") or ()) > 0
        }

    def add(self, frame: pd.DataFrame) -> None:
        for name, drift in self.features.items():
            if name in frame:
                drift.add(_values(frame[name]))

    def report(self, threshold: float) -> dict[str, Any]:
        """Per-feature PSI (the gate) and Kolmogorov-Smirnov (reported) against the baseline."""
        features: dict[str, Any] = {}
        drifted: list[str] = []
        for name, drift in self.features.items():
            if drift.count == 0:
                continue
            features[name] = drift.result(threshold)
            if features[name]["drifted"]:
                drifted.append(name)
        return {
            "status": "failed" if drifted else "passed",
            "threshold": threshold,
            "statistic": "psi",
            "drifted": drifted,
            "features": features,
        }


def drift_report(frame: pd.DataFrame, baseline: Mapping[str, Any], threshold: float) -> dict:
    """Per-feature PSI (the gate) and Kolmogorov-Smirnov (reported) of a batch in memory."""
    drift = DriftAccumulator(baseline)
    drift.add(frame)
    return drift.report(threshold)
