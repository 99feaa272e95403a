"""One self-contained HTML page per run: every version's metrics, ROC curve and confusion
matrix, lineage, drift per feature with plots, alerts, release history and endpoint numbers.

    path = write_report(workdir=W, tracking_uri=URI, model_name=NAME)

Images are embedded as base64 PNG, so the page can be mailed or archived as one file.
"""

from __future__ import annotations

import base64
import html
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines.loop.monitor import alerts, checks
from pipelines.release.local import release_history

CSS = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222}
h1{font-size:1.6rem}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
td,th{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f4f4f4}.ok{color:#176f2c}.bad{color:#b00020;font-weight:600}
.plots img{max-width:360px;margin:.25rem}code{font-size:.85rem}
"""


def _img(data: bytes, alt: str) -> str:
    return (
        f'<img alt="{html.escape(alt)}" src="data:image/png;base64,'
        f'{base64.b64encode(data).decode()}">'
    )


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _outcome(outcome: str) -> str:
    good = outcome in ("released", "unchanged")
    return f"<span class='{'ok' if good else 'bad'}'>{_esc(outcome)}</span>"


def _versions(tracking_uri: str, model_name: str) -> list[Any]:
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        found = client.search_model_versions(f"name = '{model_name}'")
    except MlflowException:
        return []
    return sorted(found, key=lambda v: int(v.version))


def _evaluation_plots(tracking_uri: str, run_id: str) -> dict[str, bytes]:
    import mlflow.artifacts

    out: dict[str, bytes] = {}
    for name in ("roc_curve.png", "confusion_matrix.png", "feature_importance.png"):
        try:
            local = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=f"evaluation/{name}", tracking_uri=tracking_uri
            )
        except Exception:  # noqa: BLE001 - a version without plots shows none
            continue
        out[name] = Path(local).read_bytes()
    return out


def _figure_png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def drift_plots(check: dict[str, Any], top: int = 6) -> list[tuple[str, bytes]]:
    """PSI per feature against the threshold, and baseline vs current bins of the top features."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    features = check["features"]
    names = sorted(features, key=lambda n: features[n]["psi"], reverse=True)
    fig, ax = plt.subplots(figsize=(9, 3.2), dpi=90)
    colours = ["#b00020" if features[n]["drifted"] else "#3a7bd5" for n in names]
    ax.bar(range(len(names)), [features[n]["psi"] for n in names], color=colours)
    ax.axhline(
        check["threshold"],
        color="black",
        linestyle="--",
        linewidth=1,
        label=f"threshold {check['threshold']}",
    )
    ax.set_xticks(range(len(names)), names, rotation=75, fontsize=6)
    ax.set_ylabel("PSI")
    ax.set_title(f"Drift per feature (version {check['version']}, {check['rows']} rows)")
    ax.legend()
    plots = [("psi_per_feature", _figure_png(fig))]
    for name in names[:top]:
        stats = features[name]
        fig, ax = plt.subplots(figsize=(4, 2.6), dpi=90)
        bins = range(len(stats["baseline_proportions"]))
        ax.bar(
            [b - 0.2 for b in bins],
            stats["baseline_proportions"],
            width=0.4,
            label="training baseline",
        )
        ax.bar(
            [b + 0.2 for b in bins],
            stats["current_proportions"],
            width=0.4,
            label="captured traffic",
        )
        ax.set_title(f"{name}: PSI {stats['psi']:.2f}", fontsize=9)
        ax.set_xlabel("baseline decile bin", fontsize=8)
        ax.legend(fontsize=6)
        plots.append((f"bins_{name}", _figure_png(fig)))
    return plots


def write_report(
    *,
    workdir: Path,
    tracking_uri: str,
    model_name: str,
    extra: dict[str, Any] | None = None,
    name: str | None = None,
) -> Path:
    """Write the report under `<workdir>/reports/` and return its path."""
    workdir = Path(workdir)
    extra = extra or {}
    now = datetime.now(UTC)
    parts = [
        f"<h1>MLOps loop report: {_esc(model_name)}</h1>",
        f"<p>Generated {now:%Y-%m-%d %H:%M:%S} UTC from <code>{_esc(workdir)}</code>; "
        f"registry <code>{_esc(tracking_uri)}</code>.</p>",
    ]
    if extra.get("summary"):
        parts.append(_table(["", ""], [[_esc(k), _esc(v)] for k, v in extra["summary"].items()]))

    versions = _versions(tracking_uri, model_name)
    parts.append("<h2>Model versions</h2>")
    rows = []
    for v in versions:
        metrics = {
            k.removeprefix("metric."): float(x)
            for k, x in v.tags.items()
            if k.startswith("metric.")
        }
        rows.append(
            [
                _esc(v.version),
                _esc(v.tags.get("approval_status", "")),
                *[f"{metrics.get(m, float('nan')):.4f}" for m in ("roc_auc", "accuracy", "f1")],
                _esc(
                    datetime.fromtimestamp(v.creation_timestamp / 1000, UTC).strftime(
                        "%Y-%m-%d %H:%M:%S"
                    )
                ),
            ]
        )
    parts.append(
        _table(["version", "approval", "roc_auc", "accuracy", "f1", "created (UTC)"], rows)
        if rows
        else "<p>No version registered.</p>"
    )
    parts.append("<h2>Lineage</h2>")
    parts.append(
        _table(
            [
                "version",
                "pipeline run",
                "data hash",
                "code version",
                "environment",
                "model hash",
                "MLflow run",
            ],
            [
                [
                    _esc(v.version),
                    _esc(v.tags.get("pipeline_run_id", "")),
                    f"<code>{_esc(v.tags.get('data_hash', '')[:16])}</code>",
                    f"<code>{_esc(v.tags.get('code_version', '')[:12])}</code>",
                    f"<code>{_esc(v.tags.get('environment_fingerprint', ''))}</code>",
                    f"<code>{_esc(v.tags.get('model_hash', '')[:16])}</code>",
                    f"<code>{_esc(v.run_id)}</code>",
                ]
                for v in versions
            ],
        )
    )
    parts.append("<h2>Explanations and edge export</h2>")
    parts.append(
        _table(
            [
                "version",
                "top features (permutation importance)",
                "ONNX exportable",
                "reason",
                "max |prob diff|",
            ],
            [
                [
                    _esc(v.version),
                    _esc(
                        ", ".join(
                            f"{name} {value:.3f}"
                            for name, value in list(
                                json.loads(v.tags.get("feature_importance", "{}")).items()
                            )[:5]
                        )
                        or "-"
                    ),
                    _esc(v.tags.get("onnx_exportable", "-")),
                    _esc(v.tags.get("onnx_reason", "")),
                    _esc(v.tags.get("onnx_max_abs_diff", "")),
                ]
                for v in versions
            ],
        )
    )
    parts.append("<h2>Evaluation plots</h2>")
    for v in versions:
        plots = _evaluation_plots(tracking_uri, v.run_id)
        imgs = "".join(_img(data, f"version {v.version} {n}") for n, data in plots.items())
        parts.append(
            f"<h3>Version {_esc(v.version)}</h3><div class='plots'>"
            f"{imgs or 'no plots logged'}</div>"
        )

    parts.append("<h2>Drift</h2>")
    all_checks = checks(workdir)
    if all_checks:
        parts.append(
            _table(
                ["time", "version", "rows", "status", "max PSI", "drifted features"],
                [
                    [
                        _esc(c["time"]),
                        _esc(c["version"]),
                        _esc(c["rows"]),
                        f"<span class='{'bad' if c['status'] == 'drift' else 'ok'}'>"
                        f"{_esc(c['status'])}</span>",
                        f"{max((f['psi'] for f in c['features'].values()), default=0):.3f}",
                        _esc(", ".join(c["drifted"]) or "-"),
                    ]
                    for c in all_checks
                ],
            )
        )
        worst = max(all_checks, key=lambda c: len(c["drifted"]))
        parts.append(f"<h3>Per feature, check of {_esc(worst['time'])}</h3>")
        parts.append(
            "<div class='plots'>" + "".join(_img(d, n) for n, d in drift_plots(worst)) + "</div>"
        )
        parts.append(
            _table(
                ["feature", "PSI", "KS statistic", "baseline mean", "traffic mean", "drifted"],
                [
                    [
                        _esc(n),
                        f"{f['psi']:.3f}",
                        f"{f['ks_statistic']:.3f}",
                        f"{f['baseline_mean']:.4g}",
                        f"{f['current_mean']:.4g}",
                        "<span class='bad'>yes</span>" if f["drifted"] else "no",
                    ]
                    for n, f in sorted(worst["features"].items(), key=lambda x: -x[1]["psi"])
                ],
            )
        )
    else:
        parts.append("<p>No monitoring check yet.</p>")
    found_alerts = alerts(workdir)
    parts.append(
        "<h2>Alerts</h2>"
        + (
            _table(
                ["time", "kind", "version", "rows", "max PSI", "drifted"],
                [
                    [
                        _esc(a["time"]),
                        _esc(a["kind"]),
                        _esc(a["version"]),
                        _esc(a["rows"]),
                        _esc(a["max_psi"]),
                        _esc(", ".join(a["drifted"])),
                    ]
                    for a in found_alerts
                ],
            )
            if found_alerts
            else "<p>None.</p>"
        )
    )

    history = release_history(workdir)
    parts.append(
        "<h2>Release history</h2>"
        + (
            _table(
                [
                    "finished",
                    "version",
                    "previous",
                    "strategy",
                    "outcome",
                    "reason",
                    "seconds",
                    "steps",
                ],
                [
                    [
                        _esc(r["finished"]),
                        _esc(r["version"]),
                        _esc(", ".join(r.get("serving_before", [])) or "-"),
                        _esc(r["strategy"]),
                        _outcome(r["outcome"]),
                        _esc(r["reason"]),
                        _esc(r["seconds"]),
                        _esc(
                            "; ".join(
                                f"{s['step']}: {'ok' if s['ok'] else 'FAILED'}"
                                + (f" ({s['requests']} req)" if "requests" in s else "")
                                for s in r["steps"]
                            )
                        ),
                    ]
                    for r in history
                ],
            )
            if history
            else "<p>No release yet.</p>"
        )
    )

    if extra.get("traffic"):
        parts.append("<h2>Live traffic</h2>")
        parts.append(
            _table(
                ["phase", "sent", "ok", "failed", "by version", "p50 ms", "p99 ms"],
                [[_esc(p), *[_esc(x) for x in row]] for p, row in extra["traffic"].items()],
            )
        )
    if extra.get("prometheus"):
        parts.append(
            "<h2>Endpoint metrics (Prometheus)</h2><pre>" + _esc(extra["prometheus"]) + "</pre>"
        )

    out_dir = workdir / "reports"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / (name or f"report-{now:%Y%m%dT%H%M%S}.html")
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>MLOps loop report</title>"
        f"<style>{CSS}</style></head><body>" + "\n".join(parts) + "</body></html>"
    )
    path.write_text(page, encoding="utf-8")
    (out_dir / "latest.json").write_text(json.dumps({"report": str(path)}))
    return path
