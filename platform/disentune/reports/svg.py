"""Inline SVG figures for the page: the interactive Pareto plot and per-trial curve sparklines.

:func:`pareto_svg` draws an :class:`~disentune.reports.interactive.InteractiveParetoData` (the
same data object whose ``plot`` the PNG is drawn from): the two objectives of ``data.axes`` on
x and y, a third one (``data.colour``) as the points' colour, replicate ranges (``data.ranges``)
as error bars, each point one ``<a class="point" href="#trial-N" data-i="i">`` holding one
circle. Every string in it is HTML-escaped; it needs no script to show or to link (the page's
script adds the tooltip).
"""

from __future__ import annotations

import html
import math
from typing import Sequence

import matplotlib
import numpy as np

from disentune.reports.interactive import InteractiveParetoData, format_value

RUN_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd")  # matplotlib's tab10, as the PNG
DOMINATED, KNEE, AXIS = "#a6a6a6", "#d62728", "#444"
WIDTH, HEIGHT = 760, 480
LEFT, TOP, BOTTOM, RIGHT, COLOURBAR = 72, 52, 52, 24, 96


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def nice_ticks(low: float, high: float, target: int = 6) -> list[float]:
    """Round tick values (steps of 1, 2 or 5 times a power of ten) inside ``[low, high]``."""
    span = high - low
    if not (math.isfinite(span) and span > 0):
        return [low]
    power = 10.0 ** math.floor(math.log10(span / target))
    step = min((m * power for m in (1, 2, 5, 10)), key=lambda st: abs(span / st - target))
    first = math.ceil(low / step - 1e-9)
    ticks = [round((first + k) * step, 12) for k in range(target * 3)]
    return [t for t in ticks if t <= high + 1e-9 * span]


def tick_text(ticks: Sequence[float]) -> list[str]:
    """Tick labels with as many decimals as the step needs (so neighbours never read alike)."""
    if len(ticks) < 2:
        return [f"{t:g}" for t in ticks]
    step = ticks[1] - ticks[0]
    if max(abs(ticks[0]), abs(ticks[-1])) >= 1e6 or step < 1e-9:
        return [f"{t:.4g}" for t in ticks]
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    return [f"{t:.{decimals}f}" for t in ticks]


def _bounds(arrays: Sequence[np.ndarray]) -> tuple[float, float]:
    finite = np.concatenate([a[np.isfinite(a)] for a in arrays]) if arrays else np.array([])
    if finite.size == 0:
        return 0.0, 1.0
    low, high = float(finite.min()), float(finite.max())
    pad = (high - low) * 0.06 or (abs(low) * 0.05 or 0.5)
    return low - pad, high + pad


def _colour(t: float) -> str:
    """viridis at ``t`` in [0, 1] (1 = the better end)."""
    return matplotlib.colors.to_hex(matplotlib.colormaps["viridis"](float(np.clip(t, 0.0, 1.0))))


def _better(name: str, data: InteractiveParetoData) -> str:
    return "lower" if data.directions[name] == "min" else "higher"


class _Frame:
    """Data coordinates -> pixel coordinates of the plot area."""

    def __init__(self, x: tuple[float, float], y: tuple[float, float], right: int) -> None:
        self.x, self.y = x, y
        self.left, self.top = LEFT, TOP
        self.width, self.height = WIDTH - LEFT - right, HEIGHT - TOP - BOTTOM

    def px(self, v: float) -> float:
        return self.left + (v - self.x[0]) / (self.x[1] - self.x[0]) * self.width

    def py(self, v: float) -> float:
        return self.top + self.height - (v - self.y[0]) / (self.y[1] - self.y[0]) * self.height


def _axes(frame: _Frame, data: InteractiveParetoData) -> list[str]:
    xname, yname = data.axes
    f = frame
    out = [f'<rect class="plot-area" x="{f.left}" y="{f.top}" width="{f.width}" height="{f.height}" '
           f'fill="#fff" stroke="{AXIS}"/>', '<g class="grid" stroke="#e4e4e4">']
    xticks, yticks = nice_ticks(*f.x), nice_ticks(*f.y)
    out += [f'<line x1="{f.px(t):.1f}" x2="{f.px(t):.1f}" y1="{f.top}" y2="{f.top + f.height}"/>' for t in xticks]
    out += [f'<line x1="{f.left}" x2="{f.left + f.width}" y1="{f.py(t):.1f}" y2="{f.py(t):.1f}"/>' for t in yticks]
    out.append(f'</g><g class="ticks" font-size="11" fill="{AXIS}">')
    base = f.top + f.height
    out += [f'<text x="{f.px(t):.1f}" y="{base + 16}" text-anchor="middle">{text}</text>'
            for t, text in zip(xticks, tick_text(xticks))]
    out += [f'<text x="{f.left - 6}" y="{f.py(t) + 4:.1f}" text-anchor="end">{text}</text>'
            for t, text in zip(yticks, tick_text(yticks))]
    out.append("</g>")
    out.append(f'<text class="axis-label x" x="{f.left + f.width / 2:.1f}" y="{HEIGHT - 12}" '
               f'text-anchor="middle" font-size="12">{_e(xname)} ({_better(xname, data)} is better)</text>')
    cy = f.top + f.height / 2
    out.append(f'<text class="axis-label y" x="16" y="{cy:.1f}" text-anchor="middle" font-size="12" '
               f'transform="rotate(-90 16 {cy:.1f})">{_e(yname)} ({_better(yname, data)} is better)</text>')
    return out


def _staircases(frame: _Frame, data: InteractiveParetoData, xs: np.ndarray, ys: np.ndarray,
                colours: dict[str, str]) -> list[str]:
    """Each run's front joined as the boundary of what it dominates (only when the axes show
    every objective: with a third one, the front is no staircase in two of them)."""
    if not data.front_only_objectives:
        return []
    out = []
    horizontal_first = data.directions[data.axes[0]] == "min"
    runs = np.array(data.plot.run, dtype=object)
    for run, colour in colours.items():
        idx = np.flatnonzero(data.plot.on_front & (runs == run) & np.isfinite(xs) & np.isfinite(ys))
        idx = idx[np.argsort(xs[idx], kind="stable")]
        if len(idx) < 2:
            continue
        d = [f"M{frame.px(xs[idx[0]]):.1f},{frame.py(ys[idx[0]]):.1f}"]
        for i in idx[1:]:
            h, v = f"H{frame.px(xs[i]):.1f}", f"V{frame.py(ys[i]):.1f}"
            d.append(h + v if horizontal_first else v + h)
        out.append(f'<path class="front-line" d="{"".join(d)}" fill="none" stroke="{colour}" '
                   f'stroke-width="1.5" pointer-events="none"/>')
    return out


def _ranges(frame: _Frame, data: InteractiveParetoData, xs: np.ndarray, ys: np.ndarray) -> list[str]:
    """One error bar (with caps) per point and axis whose objective has a finite range."""
    out = []
    for axis, name in enumerate(data.axes):
        if name not in data.ranges:
            continue
        low, high = data.ranges[name]
        for i in np.flatnonzero(np.isfinite(xs) & np.isfinite(ys) & np.isfinite(low) & np.isfinite(high)):
            x, y = frame.px(xs[i]), frame.py(ys[i])
            if axis == 0:
                a, b = frame.px(low[i]), frame.px(high[i])
                d = f"M{a:.1f},{y:.1f}H{b:.1f}M{a:.1f},{y - 3:.1f}V{y + 3:.1f}M{b:.1f},{y - 3:.1f}V{y + 3:.1f}"
            else:
                a, b = frame.py(low[i]), frame.py(high[i])
                d = f"M{x:.1f},{a:.1f}V{b:.1f}M{x - 3:.1f},{a:.1f}H{x + 3:.1f}M{x - 3:.1f},{b:.1f}H{x + 3:.1f}"
            out.append(f'<path class="range" data-i="{i}" data-axis="{_e(name)}" d="{d}" stroke="#555" '
                       f'stroke-width="1" fill="none" pointer-events="none"/>')
    return out


def _fills(data: InteractiveParetoData, colours: dict[str, str]) -> tuple[list[str], tuple[float, float] | None]:
    """Each point's fill: its run's colour (front) or grey, or the colour objective on viridis."""
    if data.colour is None:
        return [colours[r] if f else DOMINATED for r, f in zip(data.plot.run, data.plot.on_front)], None
    values = np.asarray(data.objectives[data.colour], dtype=float)
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    span = (high - low) or 1.0
    fills = []
    lower_is_better = data.directions[data.colour] == "min"
    for v in values:
        t = (v - low) / span
        fills.append("#ffffff" if not math.isfinite(v) else _colour(1 - t if lower_is_better else t))
    return fills, (low, high)


def _colourbar(data: InteractiveParetoData, scale: tuple[float, float]) -> list[str]:
    """A vertical viridis bar right of the plot: the better end at the top."""
    name, x, top, height = data.colour, WIDTH - COLOURBAR + 20, TOP + 20, HEIGHT - TOP - BOTTOM - 40
    better_high = data.directions[name] == "max"
    stops = "".join(f'<stop offset="{k / 8:.3f}" stop-color="{_colour(1 - k / 8)}"/>' for k in range(9))
    top_value, bottom_value = (scale[1], scale[0]) if better_high else (scale[0], scale[1])
    return [
        f'<defs><linearGradient id="pareto-colour" x1="0" y1="0" x2="0" y2="1">{stops}</linearGradient></defs>',
        f'<g class="colourbar" font-size="11" fill="{AXIS}">',
        f'<text x="{x}" y="{top - 8}" font-size="12">{_e(name)}</text>',
        f'<rect x="{x}" y="{top}" width="14" height="{height}" fill="url(#pareto-colour)" stroke="{AXIS}"/>',
        f'<text x="{x + 18}" y="{top + 10}">{_e(format_value(top_value))}</text>',
        f'<text x="{x + 18}" y="{top + height}">{_e(format_value(bottom_value))}</text>',
        f'<text x="{x + 7}" y="{top + height + 16}" text-anchor="middle">yellow: better</text>',
        f'<text x="{x + 7}" y="{top + height + 30}" text-anchor="middle">({_better(name, data)})</text>',
        "</g>",
    ]


def _legend(data: InteractiveParetoData, colours: dict[str, str]) -> list[str]:
    if data.colour is None:  # fill says front (by run) or dominated
        items = [(f'<circle r="5" fill="{c}" stroke="#222"/>', f"{run} Pareto front".strip())
                 for run, c in colours.items()]
        items.append((f'<circle r="4" fill="{DOMINATED}"/>', "dominated"))
    else:  # fill is the colour objective; the outline says front
        items = [('<circle r="5" fill="#fff" stroke="#222" stroke-width="1.5"/>', "Pareto front (outlined)"),
                 (f'<circle r="4" fill="{DOMINATED}" opacity="0.6"/>', "dominated")]
    if data.plot.knee.any():
        items.append((f'<circle r="7" fill="none" stroke="{KNEE}" stroke-width="2"/>', "knee"))
    if any(name in data.ranges for name in data.axes):
        items.append(('<path d="M-6,0H6M-6,-3V3M6,-3V3" stroke="#555" fill="none"/>', "replicate range"))
    out, x = ['<g class="legend" font-size="11">'], LEFT + 8.0
    for marker, label in items:
        out.append(f'<g transform="translate({x:.0f},36)">{marker}<text x="10" y="4">{_e(label)}</text></g>')
        x += 26 + 6.5 * len(label)
    out.append("</g>")
    return out


def pareto_svg(data: InteractiveParetoData) -> str:
    """The whole ``<svg id="pareto-svg">`` element as a string (no script, no external asset)."""
    xname, yname = data.axes
    xs, ys = (np.asarray(data.objectives[n], dtype=float) for n in data.axes)
    ranges_x = list(data.ranges.get(xname, ()))
    ranges_y = list(data.ranges.get(yname, ()))
    frame = _Frame(_bounds([xs, *ranges_x]), _bounds([ys, *ranges_y]),
                   RIGHT + (COLOURBAR if data.colour else 0))
    runs = list(dict.fromkeys(data.plot.run))
    colours = {run: RUN_COLOURS[k % len(RUN_COLOURS)] for k, run in enumerate(runs)}
    fills, scale = _fills(data, colours)
    out = [f'<svg id="pareto-svg" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
           f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{_e(data.plot.title)}" '
           'font-family="system-ui,sans-serif">',
           f'<text class="title" x="{WIDTH / 2:.0f}" y="20" text-anchor="middle" font-size="14">'
           f"{_e(data.plot.title)}</text>"]
    out += _axes(frame, data)
    out += _legend(data, colours)
    out += _staircases(frame, data, xs, ys, colours)
    out += ['<g class="ranges">', *_ranges(frame, data, xs, ys), "</g>"]
    # dominated points first, the front on top of them, the knee's ring and labels above all
    order = sorted(np.flatnonzero(np.isfinite(xs) & np.isfinite(ys)), key=lambda i: (data.plot.on_front[i], i))
    out.append('<g class="points">')
    for i in order:
        front = bool(data.plot.on_front[i])
        number = int(data.trial_number[i])
        label = f"{data.plot.labels[i]}: {xname} {format_value(xs[i])}, {yname} {format_value(ys[i])}"
        stroke = ' stroke="#222" stroke-width="1.5"' if front else (' stroke="#fff" stroke-width="0.5"'
                                                                      if data.colour is None else ' opacity="0.6"')
        out.append(f'<a class="point{" front" if front else ""}" href="#trial-{number}" data-i="{i}" '
                   f'data-trial="{number}" aria-label="{_e(label)}"><circle cx="{frame.px(xs[i]):.1f}" '
                   f'cy="{frame.py(ys[i]):.1f}" r="{5.5 if front else 4}" fill="{fills[i]}"{stroke}/></a>')
    out.append("</g>")
    for i in np.flatnonzero(data.plot.knee & np.isfinite(xs) & np.isfinite(ys)):
        out.append(f'<circle class="knee" cx="{frame.px(xs[i]):.1f}" cy="{frame.py(ys[i]):.1f}" r="10" '
                   f'fill="none" stroke="{KNEE}" stroke-width="2" pointer-events="none"/>')
    out.append('<g class="labels" font-size="10" fill="#222" pointer-events="none">')
    out += [f'<text x="{frame.px(xs[i]) + 7:.1f}" y="{frame.py(ys[i]) - 7:.1f}">#{int(data.trial_number[i])}</text>'
            for i in order if data.plot.on_front[i]]
    out.append("</g>")
    if scale is not None:
        out += _colourbar(data, scale)
    out.append("</svg>")
    return "\n".join(out)


def sparkline_svg(epochs: Sequence[float], values: Sequence[float], *, width: int = 120,
                  height: int = 24, label: str = "") -> str:
    """A small line of ``values`` over ``epochs`` (no axes; the page prints first and last)."""
    x, y = np.asarray(epochs, dtype=float), np.asarray(values, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) == 0:
        return ""
    sx = (x - x.min()) / ((x.max() - x.min()) or 1.0)
    sy = (y - y.min()) / ((y.max() - y.min()) or 1.0)
    points = " ".join(f"{2 + a * (width - 4):.1f},{height - 2 - b * (height - 4):.1f}" for a, b in zip(sx, sy))
    return (f'<svg class="spark" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{_e(label)}">'
            f'<polyline points="{points}" fill="none" stroke="#1f77b4" stroke-width="1.5"/></svg>')
