"""Charts drawn on the server as inline SVG: no script, no build step, readable on a phone
(every chart scales to its container through its viewBox) and in a screenshot.

Each function returns a complete ``<svg>`` element as text; labels are escaped here. Values are
plotted as given (Decimal amounts are converted to float only to place pixels; the figures
printed beside charts come from the Decimals).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from html import escape

Number = float | int | Decimal

_W, _H = 640, 220  # viewBox of the full-size charts
_PAD_L, _PAD_R, _PAD_T, _PAD_B = 48, 8, 10, 28


def _nice_max(value: float) -> float:
    """A round axis maximum at or above ``value`` (1, 2 or 5 times a power of ten)."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** len(str(int(value))) / 10 if value >= 1 else 0.1
    while magnitude > value:
        magnitude /= 10
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return float(step * magnitude)
    return float(10 * magnitude)


def _fmt(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.2g}"


def _axis(top: float, title: str) -> list[str]:
    parts = [f"<title>{escape(title)}</title>"]
    plot_h = _H - _PAD_T - _PAD_B
    for i in range(5):
        y = _PAD_T + plot_h * i / 4
        parts.append(f'<line x1="{_PAD_L}" y1="{y:.1f}" x2="{_W - _PAD_R}" y2="{y:.1f}" class="grid"/>')
        parts.append(
            f'<text x="{_PAD_L - 4}" y="{y + 4:.1f}" text-anchor="end" class="tick">'
            f"{escape(_fmt(top * (4 - i) / 4))}</text>"
        )
    return parts


def bar_chart(
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[Number]]],
    *,
    title: str,
    css_class: str = "chart",
) -> str:
    """Grouped bars, one group per label, one bar per series (``(name, values)``)."""
    values = [float(v) for _, vs in series for v in vs]
    top = _nice_max(max(values, default=0.0))
    plot_w, plot_h = _W - _PAD_L - _PAD_R, _H - _PAD_T - _PAD_B
    parts = _axis(top, title)
    n = max(1, len(labels))
    group = plot_w / n
    bar = group * 0.8 / max(1, len(series))
    every = max(1, n // 10)  # at most ~10 x labels
    for i, label in enumerate(labels):
        x0 = _PAD_L + i * group + group * 0.1
        for k, (name, vs) in enumerate(series):
            v = max(0.0, float(vs[i]))
            h = plot_h * v / top
            parts.append(
                f'<rect x="{x0 + k * bar:.1f}" y="{_PAD_T + plot_h - h:.1f}" width="{max(bar - 1, 1):.1f}" '
                f'height="{h:.1f}" class="s{k}"><title>{escape(label)} {escape(name)}: {vs[i]}</title></rect>'
            )
        if i % every == 0:
            parts.append(
                f'<text x="{x0 + group * 0.4:.1f}" y="{_H - 10}" text-anchor="middle" class="tick">'
                f"{escape(label)}</text>"
            )
    legend = "".join(
        f'<rect x="{_PAD_L + 110 * k}" y="{_H - 8}" width="8" height="8" class="s{k}"/>'
        f'<text x="{_PAD_L + 12 + 110 * k}" y="{_H}" class="tick">{escape(name)}</text>'
        for k, (name, _) in enumerate(series)
    )
    return (
        f'<svg class="{escape(css_class)}" viewBox="0 0 {_W} {_H + 4}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">{"".join(parts)}{legend}</svg>'
    )


def line_chart(
    points: Sequence[Number | None],
    *,
    title: str,
    x_labels: tuple[str, str] = ("", ""),
    css_class: str = "chart",
    unit_max: float | None = None,
) -> str:
    """One series over evenly spaced x positions; None leaves a gap."""
    known = [float(v) for v in points if v is not None]
    top = unit_max if unit_max is not None else _nice_max(max(known, default=0.0))
    plot_w, plot_h = _W - _PAD_L - _PAD_R, _H - _PAD_T - _PAD_B
    parts = _axis(top, title)
    n = max(2, len(points))
    runs: list[list[str]] = [[]]
    for i, v in enumerate(points):
        if v is None:
            runs.append([])
            continue
        x = _PAD_L + plot_w * i / (n - 1)
        y = _PAD_T + plot_h - plot_h * min(float(v), top) / top
        runs[-1].append(f"{x:.1f},{y:.1f}")
    for run in runs:
        if len(run) == 1:
            cx, cy = run[0].split(",")
            parts.append(f'<circle cx="{cx}" cy="{cy}" r="2" class="line"/>')
        elif run:
            parts.append(f'<polyline points="{" ".join(run)}" class="line"/>')
    parts.append(f'<text x="{_PAD_L}" y="{_H - 10}" class="tick">{escape(x_labels[0])}</text>')
    parts.append(
        f'<text x="{_W - _PAD_R}" y="{_H - 10}" text-anchor="end" class="tick">{escape(x_labels[1])}</text>'
    )
    return (
        f'<svg class="{escape(css_class)}" viewBox="0 0 {_W} {_H}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">{"".join(parts)}</svg>'
    )


def sparkline_points(values: Sequence[Number], width: int = 120, height: int = 30) -> str:
    """The ``points`` attribute of a sparkline polyline (also computed by the dashboard's
    script from live samples, the same way)."""
    if not values:
        return ""
    top = max(1.0, *(float(v) for v in values))
    n = max(2, len(values))
    return " ".join(
        f"{width * i / (n - 1):.1f},{height - height * float(v) / top:.1f}" for i, v in enumerate(values)
    )
