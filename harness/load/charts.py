"""Line charts as inline SVG for the load report: axes with ticks, a legend, and optional limit lines.

Built by hand rather than with matplotlib: the report must open offline as one file, and hand-made SVG is a few
kilobytes of markup that inherits the page's fonts, keeps its text selectable, and carries the attributes a test
reads (``data-chart``, ``data-points``, one ``polyline.series`` per drawn run of points). matplotlib would be a
transitive dependency of MLflow's that we do not declare, costs a second to import, and writes text as glyph paths.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 560, 250
LEFT, RIGHT, TOP, BOTTOM = 58, 18, 30, 38  # plot margins: room for the y ticks, the legend, the x ticks


@dataclass(frozen=True)
class Series:
    """One line: ``points`` are (x, y) pairs; a y of None is a gap in the line."""

    label: str
    points: Sequence[tuple[float, float | None]]
    color: str


@dataclass(frozen=True)
class Limit:
    """A horizontal line across the plot, such as a gate's limit."""

    label: str
    value: float
    color: str = "#111827"


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values from ``low`` to at least ``high``: steps of 1, 2 or 5 times a power of ten."""
    span = high - low if high > low else 1.0
    raw = span / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks = [start]
    while ticks[-1] < high - step * 1e-9:
        ticks.append(start + step * len(ticks))
    return [round(t, 10) for t in ticks]


def compact(value: float) -> str:
    """A tick label: 0.25, 12, 1.5k, 2M."""
    for factor, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g}{suffix}"
    return f"{value:.3g}"


def seconds_label(value: float) -> str:
    if value >= 120:
        return f"{int(value // 60)}:{int(value % 60):02d}"
    return f"{value:.3g} s"


def runs(points: Sequence[tuple[float, float | None]]) -> list[list[tuple[float, float]]]:
    """The unbroken runs of a series: a None (or NaN) y ends one."""
    out: list[list[tuple[float, float]]] = [[]]
    for x, y in points:
        if y is None or not math.isfinite(y):
            if out[-1]:
                out.append([])
        else:
            out[-1].append((x, y))
    return [run for run in out if run]


def line_chart(key: str, title: str, y_label: str, series: Sequence[Series], *,
               limits: Sequence[Limit] = (), x_label: str = "time since start",
               x_format: Callable[[float], str] = seconds_label, y_format: Callable[[float], str] = compact) -> str:
    """An ``<svg data-chart=key data-points=N>``, N being the number of points drawn across all series."""
    drawn = [(s, runs(s.points)) for s in series]
    xs = [x for _, rs in drawn for run in rs for x, _ in run]
    ys = [y for _, rs in drawn for run in rs for _, y in run] + [lim.value for lim in limits]
    x_ticks = nice_ticks(min(xs, default=0.0), max(xs, default=1.0), 6)
    top = max(ys, default=0.0)
    y_ticks = nice_ticks(0.0, top * 1.05 if top > 0 else 1.0, 5)  # all zeros (a clean run's errors): 0 to 1
    x0, x1, y1 = x_ticks[0], x_ticks[-1], y_ticks[-1]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(x: float) -> float:
        return LEFT + (x - x0) / ((x1 - x0) or 1.0) * plot_w

    def py(y: float) -> float:
        return TOP + plot_h - y / (y1 or 1.0) * plot_h

    parts = [f'<svg class="chart" data-chart="{escape(key)}" data-points="{sum(len(r) for _, rs in drawn for r in rs)}"'
             f' viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">', f"<title>{escape(title)}</title>"]
    for t in y_ticks:
        y = py(t)
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
                     f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(y_format(t))}</text>')
    for t in x_ticks:
        x = px(t)
        parts.append(f'<line class="tickmark" x1="{x:.1f}" x2="{x:.1f}" y1="{TOP + plot_h}" y2="{TOP + plot_h + 4}"/>'
                     f'<text class="tick" x="{x:.1f}" y="{TOP + plot_h + 17}" text-anchor="middle">'
                     f"{escape(x_format(t))}</text>")
    parts.append(f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{TOP + plot_h}" y2="{TOP + plot_h}"/>'
                 f'<line class="axis" x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{TOP + plot_h}"/>'
                 f'<text class="label" x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 4}" text-anchor="middle">'
                 f"{escape(x_label)}</text>"
                 f'<text class="label" transform="translate(13 {TOP + plot_h / 2:.1f}) rotate(-90)" '
                 f'text-anchor="middle">{escape(y_label)}</text>')
    for lim in limits:
        y = py(lim.value)
        parts.append(f'<line class="limit" data-limit="{lim.value:g}" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}"'
                     f' y2="{y:.1f}" stroke="{lim.color}"/>')
    for s, rs in drawn:
        for run in rs:
            pts = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in run)
            parts.append(f'<polyline class="series" data-series="{escape(s.label)}" stroke="{s.color}" points="{pts}"/>')
            if len(run) == 1:  # a lone point between gaps draws no line: mark it
                x, y = run[0]
                parts.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.5" fill="{s.color}"/>')
    parts.append(_legend([(s.label, s.color, False) for s in series] + [(lim.label, lim.color, True) for lim in limits]))
    parts.append("</svg>")
    return "".join(parts)


def _legend(entries: Sequence[tuple[str, str, bool]]) -> str:
    """One row above the plot, left to right; a dashed swatch for a limit."""
    out, x = ['<g class="legend">'], float(LEFT)
    for label, color, dashed in entries:
        dash = ' stroke-dasharray="5 3"' if dashed else ""
        out.append(f'<line x1="{x:.1f}" x2="{x + 18:.1f}" y1="12" y2="12" stroke="{color}" stroke-width="2.5"{dash}/>'
                   f'<text x="{x + 23:.1f}" y="16">{escape(label)}</text>')
        x += 23 + 6.8 * len(label) + 16
    out.append("</g>")
    return "".join(out)
