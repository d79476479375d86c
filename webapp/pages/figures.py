"""Every Plotly figure of the pages, built here with plotly.graph_objects and handed to the
templates as JSON (rendered in the browser by Plotly.newPlot from the vendored plotly.js)."""

from __future__ import annotations

import functools
import json
import math

import plotly.colors as pc
import plotly.graph_objects as go

TEMPLATE = "simple_white"
# Colours per model version in comparisons; the second is the "previous" version.
SERIES = ["#3b5bdb", "#e8590c", "#2b8a3e", "#ae3ec9"]
COLORSCALES = {
    "viridis": pc.sequential.Viridis,
    "greys": pc.sequential.gray,
    "inferno": pc.sequential.Inferno,
    "magma": pc.sequential.Magma,
    "cividis": pc.sequential.Cividis,
}


def warm_up() -> None:
    """Build what plotly builds once per process (its figure classes and the page template are
    imported on first use: 115 ms in a worker's first request otherwise)."""
    _history_layout()
    _heatmap_skeleton("viridis", "intensity", False, 360, 1)
    spectrum([0.0], [0.0])


def to_json(fig: go.Figure) -> dict:
    # plotly's encoder turns numpy arrays and NaN into JSON-safe values.
    return json.loads(fig.to_json())


def colorscales() -> dict[str, list]:
    """Named colour maps as explicit Plotly colour scales (plotly.js lacks inferno and magma)."""
    return {name: pc.make_colorscale(colors) for name, colors in COLORSCALES.items()}


def _grid(z) -> list[list[float | None]]:
    return [[None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in row] for row in z]


def heatmap(
    z,
    title: str,
    colorscale: str = "viridis",
    hover_name: str = "intensity",
    customdata=None,
    height: int = 360,
    step: int = 1,
) -> dict:
    """An image as a heatmap: NaN (not acquired) stays transparent, pixels stay square."""
    # The pixel grids go in after plotly builds the figure: validating 65,000 numbers one by one
    # is most of the cost and adds nothing (they are plain floats or None already). The rest of
    # the figure depends on a few settings only, so plotly builds it once per combination.
    out = json.loads(_heatmap_skeleton(colorscale, hover_name, customdata is not None, height, step))
    out["layout"]["title"]["text"] = title
    out["data"][0]["z"] = _grid(z)
    if customdata is not None:
        out["data"][0]["customdata"] = _grid(customdata)
    return out


@functools.lru_cache(maxsize=64)
def _heatmap_skeleton(colorscale: str, hover_name: str, custom: bool, height: int, step: int) -> str:
    trace = go.Heatmap(
        z=[[0.0]],
        colorscale=colorscales()[colorscale],
        hoverongaps=False,
        x0=0,
        dx=step,
        y0=0,
        dy=step,
        hovertemplate=f"x %{{x}}, y %{{y}}<br>{hover_name} %{{{'customdata' if custom else 'z'}:.4g}}<extra></extra>",
        colorbar={"thickness": 12, "len": 0.9},
    )
    fig = go.Figure(trace)
    fig.update_layout(
        template=TEMPLATE,
        title={"text": "", "font": {"size": 14}},
        height=height,
        margin={"l": 40, "r": 10, "t": 36, "b": 30},
    )
    fig.update_yaxes(autorange="reversed", scaleanchor="x", constrain="domain", showgrid=False)
    fig.update_xaxes(constrain="domain", showgrid=False)
    return fig.to_json()


def spectrum(mz: list[float], intensity: list[float], height: int = 300) -> dict:
    """The mean spectrum; pages mark an image's m/z on it in the browser (static/js/ionsieve.js),
    so that one cached figure serves every image of a dataset."""
    fig = go.Figure(
        go.Scattergl(
            x=mz,
            y=intensity,
            mode="lines",
            line={"width": 1, "color": "#1d2330"},
            hovertemplate="m/z %{x:.4f}<br>intensity %{y:.4g}<extra></extra>",
            name="mean",
        )
    )
    fig.update_layout(
        template=TEMPLATE,
        title={"text": "Mean spectrum", "font": {"size": 14}},
        height=height,
        margin={"l": 50, "r": 10, "t": 36, "b": 40},
        xaxis_title="m/z",
        yaxis_title="mean intensity",
        showlegend=False,
    )
    return to_json(fig)


def probability_history(history: list[dict], classes: list[str], labels: dict[str, str]) -> dict:
    # Plain traces on a layout plotly builds once: through plotly per request this took ~20 ms.
    names = [h["name"] for h in history]
    shown = classes[:1] if len(classes) == 2 else classes
    data = [
        {
            "type": "scatter",
            "x": names,
            "y": [h["probabilities"].get(c) for h in history],
            "mode": "lines+markers",
            "name": f"P({labels.get(c, c)})",
            "line": {"color": SERIES[i % len(SERIES)]},
        }
        for i, c in enumerate(shown)
    ]
    return {"data": data, "layout": json.loads(_history_layout())}


@functools.lru_cache(maxsize=1)
def _history_layout() -> str:
    fig = go.Figure()
    fig.update_layout(
        template=TEMPLATE,
        title={"text": "Probability across model versions", "font": {"size": 14}},
        height=280,
        margin={"l": 50, "r": 10, "t": 36, "b": 40},
        yaxis={"range": [-0.02, 1.02]},
        xaxis={"type": "category"},
        legend={"orientation": "h", "y": -0.25},
    )
    return json.dumps(to_json(fig)["layout"])


def roc(reviews: list[dict]) -> dict:
    """ROC curves of the held-out predictions of each version shown (evaluation.accuracy objects)."""
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            line={"dash": "dot", "color": "#adb5bd"},
            showlegend=False,
            hoverinfo="skip",
        )
    )
    for i, r in enumerate(reviews):
        for j, c in enumerate(r["curves"]):
            fig.add_trace(
                go.Scatter(
                    x=c["fpr"],
                    y=c["tpr"],
                    mode="lines",
                    name=_curve_name(r, c, "AUC", c["auc"]),
                    line={"color": SERIES[i % len(SERIES)], "dash": ["solid", "dash", "dot"][j % 3]},
                )
            )
    fig.update_layout(
        template=TEMPLATE,
        title={"text": "ROC curve · held out", "font": {"size": 14}},
        height=360,
        xaxis_title="false positive rate",
        yaxis_title="true positive rate",
        margin={"l": 50, "r": 10, "t": 36, "b": 40},
        legend={"x": 0.35, "y": 0.05},
    )
    return to_json(fig)


def precision_recall(reviews: list[dict]) -> dict:
    """Precision-recall curves of the held-out predictions of each version shown."""
    fig = go.Figure()
    for i, r in enumerate(reviews):
        for j, c in enumerate(r["curves"]):
            fig.add_trace(
                go.Scatter(
                    x=c["recall"],
                    y=c["precision"],
                    mode="lines",
                    name=_curve_name(r, c, "AP", c["average_precision"]),
                    line={"color": SERIES[i % len(SERIES)], "dash": ["solid", "dash", "dot"][j % 3]},
                )
            )
    fig.update_layout(
        template=TEMPLATE,
        title={"text": "Precision–recall curve · held out", "font": {"size": 14}},
        height=360,
        xaxis_title="recall",
        yaxis_title="precision",
        yaxis={"range": [0, 1.02]},
        margin={"l": 50, "r": 10, "t": 36, "b": 40},
        legend={"x": 0.02, "y": 0.05},
    )
    return to_json(fig)


def _curve_name(review: dict, curve: dict, what: str, value) -> str:
    many = len(review["curves"]) > 1
    value_text = f"{value:.3f}" if value is not None else "n/a"
    return f"{review['name']}{' · ' + curve['class'] if many else ''} ({what} {value_text})"


def confusion(review: dict, labels: list[str]) -> dict | None:
    """Confusion matrix of the held-out decisions (rows: human label)."""
    matrix = review["confusion"]
    if not matrix:
        return None
    fig = go.Figure(
        go.Heatmap(
            z=matrix,
            x=labels,
            y=labels,
            colorscale="Blues",
            showscale=False,
            text=matrix,
            texttemplate="%{text}",
            hovertemplate="labelled %{y}<br>predicted %{x}<br>%{z} images<extra></extra>",
        )
    )
    fig.update_layout(
        template=TEMPLATE,
        title={"text": f"Confusion matrix · {review['name']} · held out", "font": {"size": 14}},
        height=320,
        margin={"l": 90, "r": 10, "t": 36, "b": 50},
        xaxis={"title": "predicted", "side": "bottom"},
        yaxis={"title": "human label", "autorange": "reversed"},
    )
    return to_json(fig)
