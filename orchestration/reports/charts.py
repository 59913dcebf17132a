"""SVG charts for the feedback reports, built as strings in Python.

Why strings and not a plotting library: the report must be one
self-contained HTML file that opens offline, renders the same everywhere and
is cheap to build for 700 sites. Inline SVG does all of that with no
dependency. Every chart

* is an ``<svg>`` with ``data-chart`` (funnel, caterpillar, trend, cusum,
  vlad), ``role="img"``, a ``<title>`` and a ``<desc>``, explicit ``width``
  and ``height`` and a ``viewBox`` (the page CSS lets it shrink);
* carries its plot area and axis domains as ``data-plot`` ("x0 y0 x1 y1",
  pixels) and ``data-x-domain`` / ``data-y-domain`` so that a test (or a
  reader) can map a position back to a value;
* uses no ``xmlns`` (inline SVG in HTML5 needs none, and the report must not
  contain any URL).

The funnel and caterpillar plots are split into a *base* (axes, limits and
every peer, the same for all sites of a period) and the site's highlight, so
that a publication of 700 sites builds each base once.

Styling comes from classes defined in the page stylesheet
(``templates/_style.css``) plus a few presentation attributes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

import numpy as np

WIDTH = 560
HEIGHT = 320


def _e(text) -> str:
    return escape(str(text), quote=True)


def _f(value: float) -> str:
    """A coordinate with one decimal."""
    return f"{value:.1f}"


@dataclass(frozen=True)
class Scale:
    """Linear map from a data domain [d0, d1] to pixels [r0, r1]."""

    d0: float
    d1: float
    r0: float
    r1: float

    def __call__(self, value: float) -> float:
        span = self.d1 - self.d0 or 1.0
        return self.r0 + (value - self.d0) / span * (self.r1 - self.r0)

    def invert(self, pixel: float) -> float:
        span = self.r1 - self.r0 or 1.0
        return self.d0 + (pixel - self.r0) / span * (self.d1 - self.d0)

    def array(self, values) -> np.ndarray:
        span = self.d1 - self.d0 or 1.0
        return self.r0 + (np.asarray(values, dtype=float) - self.d0) / span * (self.r1 - self.r0)


def nice_step(span: float, count: int = 5) -> float:
    if not span > 0 or not math.isfinite(span):
        return 1.0
    raw = span / count
    magnitude = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * magnitude:
            return m * magnitude
    return 10 * magnitude


def nice_domain(lo: float, hi: float, count: int = 5) -> tuple[float, float]:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return 0.0, 1.0
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    step = nice_step(hi - lo, count)
    return math.floor(lo / step + 1e-9) * step, math.ceil(hi / step - 1e-9) * step


def ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    step = nice_step(hi - lo, count)
    first = math.ceil(lo / step - 1e-9) * step
    out, value = [], first
    while value <= hi + step * 1e-6:
        out.append(round(value, 10))
        value += step
    return out


def tick_label(value: float, step: float) -> str:
    if step >= 1:
        return f"{value:,.0f}"
    digits = max(0, -math.floor(math.log10(step) + 1e-9))
    if abs(step * 10 ** digits - round(step * 10 ** digits)) > 1e-9:
        digits += 1
    return f"{value:.{digits}f}"


@dataclass
class Frame:
    """Canvas and plot area of one chart."""

    width: int = WIDTH
    height: int = HEIGHT
    left: int = 58
    right: int = 18
    top: int = 40
    bottom: int = 48

    @property
    def x0(self) -> float:
        return self.left

    @property
    def x1(self) -> float:
        return self.width - self.right

    @property
    def y0(self) -> float:
        return self.top

    @property
    def y1(self) -> float:
        return self.height - self.bottom

    def xscale(self, lo: float, hi: float) -> Scale:
        return Scale(lo, hi, self.x0, self.x1)

    def yscale(self, lo: float, hi: float) -> Scale:
        return Scale(lo, hi, self.y1, self.y0)


_counter = {"n": 0}


def _uid(kind: str, uid: str | None = None) -> str:
    """A document-unique id prefix; callers pass a stable one so that output is reproducible."""
    if uid:
        return uid
    _counter["n"] += 1
    return f"{kind}-{_counter['n']}"


def svg_open(kind: str, frame: Frame, title: str, desc: str, x: Scale | None, y: Scale | None, uid: str) -> str:
    data = f' data-plot="{_f(frame.x0)} {_f(frame.y0)} {_f(frame.x1)} {_f(frame.y1)}"'
    if x is not None:
        data += f' data-x-domain="{x.d0:.6g} {x.d1:.6g}"'
    if y is not None:
        data += f' data-y-domain="{y.d0:.6g} {y.d1:.6g}"'
    return (f'<svg class="chart chart-{kind}" data-chart="{kind}" role="img" aria-labelledby="{uid}-t {uid}-d" '
            f'width="{frame.width}" height="{frame.height}" viewBox="0 0 {frame.width} {frame.height}"{data}>'
            f'<title id="{uid}-t">{_e(title)}</title><desc id="{uid}-d">{_e(desc)}</desc>'
            f'<defs><clipPath id="{uid}-clip"><rect x="{_f(frame.x0)}" y="{_f(frame.y0)}" '
            f'width="{_f(frame.x1 - frame.x0)}" height="{_f(frame.y1 - frame.y0)}"/></clipPath></defs>')


def axes(frame: Frame, x: Scale | None, y: Scale, x_title: str, y_title: str, *, x_ticks: bool = True) -> str:
    """Horizontal grid, y ticks and labels, x ticks and labels, axis titles."""
    parts = ['<g class="axes">']
    ys = ticks(y.d0, y.d1)
    ystep = ys[1] - ys[0] if len(ys) > 1 else 1.0
    for value in ys:
        py = y(value)
        parts.append(f'<line class="grid" x1="{_f(frame.x0)}" x2="{_f(frame.x1)}" y1="{_f(py)}" y2="{_f(py)}"/>')
        parts.append(f'<text class="tick" x="{_f(frame.x0 - 8)}" y="{_f(py + 3.5)}" text-anchor="end">'
                     f'{tick_label(value, ystep)}</text>')
    parts.append(f'<line class="axis" x1="{_f(frame.x0)}" x2="{_f(frame.x1)}" y1="{_f(frame.y1)}" '
                 f'y2="{_f(frame.y1)}"/>')
    if x is not None and x_ticks:
        xs = ticks(x.d0, x.d1)
        xstep = xs[1] - xs[0] if len(xs) > 1 else 1.0
        for value in xs:
            px = x(value)
            parts.append(f'<line class="axis" x1="{_f(px)}" x2="{_f(px)}" y1="{_f(frame.y1)}" '
                         f'y2="{_f(frame.y1 + 5)}"/>')
            parts.append(f'<text class="tick" x="{_f(px)}" y="{_f(frame.y1 + 18)}" text-anchor="middle">'
                         f'{tick_label(value, xstep)}</text>')
    if x_title:
        parts.append(f'<text class="axis-title" x="{_f((frame.x0 + frame.x1) / 2)}" y="{frame.height - 8}" '
                     f'text-anchor="middle">{_e(x_title)}</text>')
    cy = (frame.y0 + frame.y1) / 2
    parts.append(f'<text class="axis-title" x="14" y="{_f(cy)}" text-anchor="middle" '
                 f'transform="rotate(-90 14 {_f(cy)})">{_e(y_title)}</text>')
    parts.append("</g>")
    return "".join(parts)


@dataclass(frozen=True)
class LegendItem:
    label: str
    kind: str          # "dot", "line", "dash", "band", "ring"
    css: str


def legend(frame: Frame, items: Sequence[LegendItem]) -> str:
    """One row of legend items above the plot area."""
    parts, x = ['<g class="legend">'], float(frame.x0)
    y = 16.0
    for item in items:
        if item.kind == "dot":
            parts.append(f'<circle class="legend-dot {item.css}" cx="{_f(x + 5)}" cy="{_f(y - 4)}" r="4.5"/>')
        elif item.kind == "band":
            parts.append(f'<rect class="{item.css}" x="{_f(x)}" y="{_f(y - 9)}" width="12" height="10"/>')
        else:
            parts.append(f'<line class="{item.css}" x1="{_f(x - 2)}" x2="{_f(x + 14)}" y1="{_f(y - 4)}" '
                         f'y2="{_f(y - 4)}"/>')
        parts.append(f'<text class="legend-label" x="{_f(x + 18)}" y="{_f(y)}">{_e(item.label)}</text>')
        x += 26 + 6.2 * len(item.label)
    parts.append("</g>")
    return "".join(parts)


def polyline(xs, ys) -> str:
    """SVG path data through the points, breaking at missing values."""
    xs = np.asarray(xs, dtype=float)
    ys = np.asarray(ys, dtype=float)
    ok = np.isfinite(xs) & np.isfinite(ys)
    if ok.all():
        # the common case (long case-level series): one join over plain floats
        if not len(xs):
            return ""
        # one %-format over all points: the C loop of str.__mod__, not a Python call per point
        return "M" + "L".join(["%.1f %.1f"] * len(xs)) % tuple(np.column_stack((xs, ys)).ravel().tolist())
    out, pen = [], False
    for px, py, good in zip(xs.tolist(), ys.tolist(), ok.tolist()):
        if not good:
            pen = False
            continue
        out.append(("L" if pen else "M") + f"{px:.1f} {py:.1f}")
        pen = True
    return "".join(out)


LINE_COLUMN = 0.5   # chart units per column kept by ``line_points``: a device pixel at twice the chart's size


def line_points(xs, ys, column: float = LINE_COLUMN) -> np.ndarray:
    """Positions of the points that draw the same line as all of them (M4 aggregation).

    A case-level CUSUM or VLAD of 14,000 cases has about 30 points per unit of a 560-unit chart:
    most of them land on the same pixel. Within each column ``column`` units wide the line
    through the column's first, lowest, highest and last points covers exactly the pixels the
    line through all its points covers, and the segments between columns are unchanged (Jugel
    et al., "M4: a visualization-oriented time series data aggregation", VLDB 2014). ``xs``
    must be increasing and the values finite; otherwise every position is kept.
    """
    xs = np.asarray(xs, dtype=float)
    ys = np.asarray(ys, dtype=float)
    n = len(xs)
    if n < 8 or not (np.isfinite(xs).all() and np.isfinite(ys).all()) or (np.diff(xs) < 0).any():
        return np.arange(n)
    columns = np.floor((xs - xs[0]) / column).astype(np.int64)
    starts = np.flatnonzero(np.r_[True, columns[1:] != columns[:-1]])
    ends = np.r_[starts[1:], n] - 1
    order = np.lexsort((ys, columns))       # by column, then value: each column's run is in place
    return np.unique(np.concatenate([starts, ends, order[starts], order[ends]]))


def _note(frame: Frame, text: str) -> str:
    return (f'<text class="note" x="{_f((frame.x0 + frame.x1) / 2)}" y="{_f((frame.y0 + frame.y1) / 2)}" '
            f'text-anchor="middle">{_e(text)}</text>')


def _you_label(px: float, py: float, frame: Frame, text: str = "You") -> str:
    anchor, dx = ("end", -9) if px > frame.x1 - 40 else ("start", 9)
    return (f'<text class="you-label" x="{_f(px + dx)}" y="{_f(py - 7)}" text-anchor="{anchor}">'
            f'{_e(text)}</text>')


# ---------------------------------------------------------------- funnel


@dataclass(frozen=True)
class FunnelPoint:
    expected: float
    oe: float
    title: str | None = None      # hover text; None for no tooltip
    css: str = "peer"


@dataclass
class FunnelBase:
    """Everything of a funnel plot except the highlighted site."""

    frame: Frame
    x: Scale
    y: Scale
    body: str
    title: str
    desc: str
    uid: str


def funnel_base(curves, points: Sequence[FunnelPoint], *, title: str, desc: str,
                legend_items: Sequence[LegendItem] | None = None, frame: Frame | None = None,
                uid: str | None = None) -> FunnelBase:
    """Axes, the 95% and 99.8% limits, the target O/E = 1 and every peer point.

    ``curves``: a DataFrame with expected, lower_95, upper_95, lower_998,
    upper_998 (O/E limits against expected counts). The y axis (O/E) runs
    from 0 to a nice value above the 98th percentile of the points (at least
    2); points beyond it are drawn as triangles on the top edge.
    """
    frame = frame or Frame()
    oe = np.array([p.oe for p in points], dtype=float)
    ex = np.array([p.expected for p in points], dtype=float)
    ok = np.isfinite(oe) & np.isfinite(ex)
    top = max(2.0, float(np.quantile(oe[ok], 0.98)) * 1.12) if ok.any() else 2.0
    top = min(top, 5.0)
    xmax = float(ex[ok].max()) * 1.04 if ok.any() else 0.0
    if curves is not None and len(curves) and not ok.any():
        xmax = float(curves["expected"].max())
    x = frame.xscale(*nice_domain(0.0, max(xmax, 1.0)))
    y = frame.yscale(*nice_domain(0.0, top))
    uid = _uid("funnel", uid)
    parts = [axes(frame, x, y, "Expected events (E)", "Observed / expected (O/E)")]
    clip = f' clip-path="url(#{uid}-clip)"'
    parts.append(f'<line class="target" x1="{_f(frame.x0)}" x2="{_f(frame.x1)}" y1="{_f(y(1.0))}" '
                 f'y2="{_f(y(1.0))}"/>')
    if curves is not None and len(curves):
        c = curves.sort_values("expected")
        c = c[(c["expected"] > 0) & (c["expected"] <= x.d1)]
        cx = x.array(c["expected"])
        for column, css in (("lower_95", "limit95"), ("upper_95", "limit95"),
                            ("lower_998", "limit998"), ("upper_998", "limit998")):
            if column in c:
                cy = y.array(np.minimum(c[column].to_numpy(dtype=float), y.d1 * 4))
                parts.append(f'<path class="{css}"{clip} d="{polyline(cx, cy)}"/>')
    dots = ['<g class="points">']
    for p, good in zip(points, ok):
        if not good:
            continue
        dots.append(_funnel_marker(x, y, p.expected, p.oe, p.css, p.title, 3.2))
    dots.append("</g>")
    parts.append("".join(dots))
    items = legend_items if legend_items is not None else [
        LegendItem("Your site", "dot", "site"), LegendItem("Other sites", "dot", "peer"),
        LegendItem("95% limits", "line", "limit95"), LegendItem("99.8% limits", "line", "limit998"),
        LegendItem("O/E = 1", "line", "target")]
    parts.append(legend(frame, items))
    if not ok.any():
        parts.append(_note(frame, "No included sites this period"))
    return FunnelBase(frame=frame, x=x, y=y, body="".join(parts), title=title, desc=desc, uid=uid)


def _funnel_marker(x: Scale, y: Scale, expected: float, oe: float, css: str, title: str | None, r: float) -> str:
    px = x(expected)
    tip = f"<title>{_e(title)}</title>" if title else ""
    if oe > y.d1:
        py = y(y.d1)
        return (f'<path class="{css} off-scale" d="M{_f(px)} {_f(py - 1)}l{_f(-r - 1)} {_f(2 * r + 2)}'
                f'h{_f(2 * r + 2)}z">{tip}</path>')
    return f'<circle class="{css}" cx="{_f(px)}" cy="{_f(y(oe))}" r="{r}">{tip}</circle>'


def funnel_chart(base: FunnelBase, site: FunnelPoint | None = None, *, you: str = "You") -> str:
    """The funnel plot with the site (if any) highlighted on top of its peers."""
    parts = [svg_open("funnel", base.frame, base.title, base.desc, base.x, base.y, base.uid), base.body]
    if site is not None and math.isfinite(site.oe) and math.isfinite(site.expected):
        marker = _funnel_marker(base.x, base.y, site.expected, site.oe, "site", site.title, 5.5)
        marker = marker.replace('class="site', 'data-role="site" class="site', 1)
        parts.append(marker)
        py = base.y(min(site.oe, base.y.d1))
        parts.append(_you_label(base.x(site.expected), py, base.frame, you))
    parts.append("</svg>")
    return "".join(parts)


# ---------------------------------------------------------------- caterpillar


@dataclass
class CaterpillarBase:
    frame: Frame
    x: Scale
    y: Scale
    keys: list
    values: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    body: str
    title: str
    desc: str
    uid: str


def caterpillar_base(keys: Sequence, value, lower, upper, *, title: str, desc: str,
                     frame: Frame | None = None, uid: str | None = None) -> CaterpillarBase:
    """All sites' reliability-adjusted O/E with 95% intervals, sorted ascending, unlabeled.

    Intervals are one ``<path>`` and the points another (round line caps), so
    that 700 sites cost two elements, not 1,400.
    """
    frame = frame or Frame()
    v = np.asarray(value, dtype=float)
    lo = np.asarray(lower, dtype=float)
    hi = np.asarray(upper, dtype=float)
    ok = np.isfinite(v)
    order = np.argsort(np.where(ok, v, np.inf), kind="stable")[: int(ok.sum())]
    keys = [keys[i] for i in order]
    v, lo, hi = v[order], lo[order], hi[order]
    n = len(keys)
    x = frame.xscale(0.5, max(n, 1) + 0.5)
    finite = np.concatenate([v, lo[np.isfinite(lo)], hi[np.isfinite(hi)], [1.0]])
    ymin = min(float(finite.min()) * 0.95, 0.8)
    ymax = max(float(finite.max()) * 1.04, 1.2)
    y = frame.yscale(*nice_domain(max(0.0, ymin), min(ymax, 6.0)))
    uid = _uid("caterpillar", uid)
    parts = [axes(frame, x, y, "Sites, ordered by reliability-adjusted O/E", "Reliability-adjusted O/E",
                  x_ticks=False)]
    parts.append(f'<line class="target" x1="{_f(frame.x0)}" x2="{_f(frame.x1)}" y1="{_f(y(1.0))}" '
                 f'y2="{_f(y(1.0))}"/>')
    if n:
        px = x.array(np.arange(1, n + 1))
        width = max(0.6, min(2.0, (frame.x1 - frame.x0) / n * 0.45))
        bars = "".join(f"M{a:.1f} {b:.1f}V{c:.1f}" for a, b, c in zip(
            px, y.array(np.clip(np.nan_to_num(lo, nan=0), y.d0, y.d1)),
            y.array(np.clip(np.nan_to_num(hi, nan=0), y.d0, y.d1))) if b != c)
        dots = "".join(f"M{a:.1f} {b:.1f}h0" for a, b in zip(px, y.array(np.clip(v, y.d0, y.d1))))
        radius = max(2.0, min(5.0, (frame.x1 - frame.x0) / n * 0.8))
        clip = f' clip-path="url(#{uid}-clip)"'
        parts.append(f'<path class="cat-interval"{clip} stroke-width="{width:.1f}" d="{bars}"/>')
        parts.append(f'<path class="cat-point"{clip} stroke-width="{radius:.1f}" stroke-linecap="round" '
                     f'd="{dots}"/>')
    else:
        parts.append(_note(frame, "No included sites this period"))
    parts.append(legend(frame, [LegendItem("Your site", "dot", "site"), LegendItem("Other sites", "dot", "peer"),
                                LegendItem("95% interval", "line", "cat-legend"),
                                LegendItem("O/E = 1", "line", "target")]))
    return CaterpillarBase(frame=frame, x=x, y=y, keys=keys, values=v, lower=lo, upper=hi, body="".join(parts),
                           title=title, desc=desc, uid=uid)


def caterpillar_chart(base: CaterpillarBase, site_key=None, *, title: str | None = None, you: str = "You") -> str:
    parts = [svg_open("caterpillar", base.frame, base.title, base.desc, base.x, base.y, base.uid), base.body]
    if site_key is not None and site_key in base.keys:
        i = base.keys.index(site_key)
        px = base.x(i + 1)
        lo, hi, v = base.lower[i], base.upper[i], base.values[i]
        clamp = lambda t: min(max(t, base.y.d0), base.y.d1)  # noqa: E731
        tip = f"<title>{_e(title)}</title>" if title else ""
        if math.isfinite(lo) and math.isfinite(hi):
            parts.append(f'<line class="site-interval" x1="{_f(px)}" x2="{_f(px)}" y1="{_f(base.y(clamp(lo)))}" '
                         f'y2="{_f(base.y(clamp(hi)))}"/>')
        py = base.y(clamp(v))
        parts.append(f'<circle data-role="site" class="site" cx="{_f(px)}" cy="{_f(py)}" r="5">{tip}</circle>')
        top = base.y(clamp(hi)) if math.isfinite(hi) else py
        parts.append(_you_label(px, top + 2, base.frame, you))
    parts.append("</svg>")
    return "".join(parts)


# ---------------------------------------------------------------- trend


@dataclass(frozen=True)
class TrendPoint:
    period: str
    value: float            # NaN when not included
    centre: float
    lower: float
    upper: float
    title: str | None = None
    signal: bool = False
    gap: str = "not included"      # the label shown where there is no value


def trend_chart(points: Sequence[TrendPoint], *, title: str, desc: str, y_title: str = "Observed / expected (O/E)",
                highlight: str | None = None, frame: Frame | None = None, uid: str | None = None) -> str:
    """The site's value per period with the centre line and 3-sigma control limits (step lines)."""
    frame = frame or Frame()
    n = len(points)
    x = frame.xscale(0.5, max(n, 1) + 0.5)
    vals = [v for p in points for v in (p.value, p.upper, p.lower, p.centre) if math.isfinite(v)]
    top = min(max(vals + [1.5]) * 1.05, 5.0) if vals else 2.0
    y = frame.yscale(*nice_domain(0.0, top))
    uid = _uid("trend", uid)
    parts = [svg_open("trend", frame, title, desc, x, y, uid), axes(frame, None, y, "Period", y_title)]
    clip = f' clip-path="url(#{uid}-clip)"'
    half = (frame.x1 - frame.x0) / max(n, 1) / 2
    for i, p in enumerate(points, start=1):
        px = x(i)
        css = "tick current" if p.period == highlight else "tick"
        parts.append(f'<text class="{css}" x="{_f(px)}" y="{_f(frame.y1 + 18)}" text-anchor="middle">'
                     f'{_e(p.period)}</text>')
        if math.isfinite(p.upper):
            parts.append(f'<path class="control"{clip} d="M{_f(px - half)} {_f(y(min(p.upper, y.d1 * 2)))}'
                         f'h{_f(2 * half)}M{_f(px - half)} {_f(y(p.lower))}h{_f(2 * half)}"/>')
    centres = [p.centre for p in points if math.isfinite(p.centre)]
    if centres:
        parts.append(f'<line class="centre" x1="{_f(frame.x0)}" x2="{_f(frame.x1)}" y1="{_f(y(centres[0]))}" '
                     f'y2="{_f(y(centres[0]))}"/>')
    xs = x.array(np.arange(1, n + 1))
    ys = y.array([min(p.value, y.d1) if math.isfinite(p.value) else np.nan for p in points])
    parts.append(f'<path class="series" d="{polyline(xs, ys)}"/>')
    for p, px, py in zip(points, xs, ys):
        if not math.isfinite(py):
            parts.append(f'<text class="gap" x="{_f(px)}" y="{_f(frame.y1 - 6)}" text-anchor="middle">'
                         f'{_e(p.gap)}</text>')
            continue
        css = "point signal" if p.signal else "point"
        if p.period == highlight:
            css += " current"
        tip = f"<title>{_e(p.title)}</title>" if p.title else ""
        parts.append(f'<circle class="{css}" cx="{_f(px)}" cy="{_f(py)}" r="{5 if p.signal else 4}">{tip}</circle>')
    parts.append(legend(frame, [LegendItem("Your O/E", "dot", "point"), LegendItem("Centre (1.0)", "line", "centre"),
                                LegendItem("3-sigma limits", "line", "control"),
                                LegendItem("Outside limits", "dot", "point signal")]))
    parts.append("</svg>")
    return "".join(parts)


# ---------------------------------------------------------------- CUSUM and VLAD


def _period_axis(frame: Frame, x: Scale, boundaries: Sequence[tuple[int, str]], n: int) -> str:
    """Vertical separators at the first case of each period, period labels between them."""
    parts = []
    edges = [b[0] for b in boundaries] + [n]
    for (start, label), end in zip(boundaries, edges[1:]):
        px = x(start + 0.5)
        if start > 0:
            parts.append(f'<line class="period-sep" x1="{_f(px)}" x2="{_f(px)}" y1="{_f(frame.y0)}" '
                         f'y2="{_f(frame.y1)}"/>')
        mid = x((start + end) / 2 + 0.5)
        parts.append(f'<text class="tick" x="{_f(mid)}" y="{_f(frame.y1 + 18)}" text-anchor="middle">'
                     f'{_e(label)}</text>')
    return "".join(parts)


def cusum_chart(upper, lower, *, h: float, boundaries: Sequence[tuple[int, str]], title: str, desc: str,
                upper_signals: Sequence[int] = (), lower_signals: Sequence[int] = (),
                frame: Frame | None = None, uid: str | None = None) -> str:
    """Two-sided risk-adjusted CUSUM: deterioration above 0, improvement below, alarm lines at +h and -h."""
    frame = frame or Frame()
    up = np.asarray(upper, dtype=float)
    down = np.asarray(lower, dtype=float)
    n = len(up)
    x = frame.xscale(0.5, max(n, 1) + 0.5)
    top = max(h * 1.25, float(up.max()) * 1.05 if n else 0)
    bottom = min(-h * 1.25, float(down.min()) * 1.05 if n else 0)
    y = frame.yscale(*nice_domain(bottom, top))
    uid = _uid("cusum", uid)
    parts = [svg_open("cusum", frame, title, desc, x, y, uid), axes(frame, None, y, "Cases in operation-date order",
                                                                     "CUSUM")]
    parts.append(_period_axis(frame, x, boundaries, n))
    for level, css in ((h, "alarm-high"), (-h, "alarm-low")):
        parts.append(f'<line class="{css}" x1="{_f(frame.x0)}" x2="{_f(frame.x1)}" y1="{_f(y(level))}" '
                     f'y2="{_f(y(level))}"/>')
    parts.append(f'<line class="target" x1="{_f(frame.x0)}" x2="{_f(frame.x1)}" y1="{_f(y(0))}" y2="{_f(y(0))}"/>')
    xs = x.array(np.arange(1, n + 1))
    for css, values in (("cusum-up", y.array(up)), ("cusum-down", y.array(down))):
        kept = line_points(xs, values)
        parts.append(f'<path class="{css}" d="{polyline(xs[kept], values[kept])}"/>')
    for idx in upper_signals:
        parts.append(f'<circle class="signal-high" cx="{_f(xs[idx])}" cy="{_f(y(up[idx]))}" r="4.5"/>')
    for idx in lower_signals:
        parts.append(f'<circle class="signal-low" cx="{_f(xs[idx])}" cy="{_f(y(down[idx]))}" r="4.5"/>')
    parts.append(legend(frame, [LegendItem("Worse (odds ×2)", "line", "cusum-up"),
                                LegendItem("Better (odds ×½)", "line", "cusum-down"),
                                LegendItem(f"Alarm h = ±{h:g}", "line", "alarm-high"),
                                LegendItem("Signal", "dot", "signal-high")]))
    parts.append("</svg>")
    return "".join(parts)


def vlad_chart(values, *, boundaries: Sequence[tuple[int, str]], title: str, desc: str,
               frame: Frame | None = None, uid: str | None = None) -> str:
    """VLAD: cumulative expected minus observed events; above zero = fewer events than predicted."""
    frame = frame or Frame()
    v = np.asarray(values, dtype=float)
    n = len(v)
    x = frame.xscale(0.0, max(n, 1) + 0.5)
    lo = min(float(v.min()) if n else 0.0, -1.0)
    hi = max(float(v.max()) if n else 0.0, 1.0)
    y = frame.yscale(*nice_domain(lo * 1.05, hi * 1.05))
    uid = _uid("vlad", uid)
    parts = [svg_open("vlad", frame, title, desc, x, y, uid),
             axes(frame, None, y, "Cases in operation-date order", "Expected − observed events")]
    parts.append(_period_axis(frame, x, boundaries, n))
    parts.append(f'<line class="target" x1="{_f(frame.x0)}" x2="{_f(frame.x1)}" y1="{_f(y(0))}" y2="{_f(y(0))}"/>')
    xs = x.array(np.arange(0, n + 1))
    ys = y.array(np.concatenate([[0.0], v]))
    kept = line_points(xs, ys)
    line = polyline(xs[kept], ys[kept])
    base = _f(y(0))
    if n:
        parts.append(f'<path class="vlad-area" d="{line}L{_f(xs[-1])} {base}L{_f(xs[0])} {base}Z"/>')
    parts.append(f'<path class="vlad-line" d="{line}"/>')
    parts.append(legend(frame, [LegendItem("Expected − observed (cumulative)", "line", "vlad-line"),
                                LegendItem("Zero: as predicted", "line", "target")]))
    parts.append("</svg>")
    return "".join(parts)
