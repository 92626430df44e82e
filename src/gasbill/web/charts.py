"""Charts as inline SVG, drawn on the server: no chart library, nothing loaded from outside.

Values are Decimals (yuan, m³); every label is escaped. Each chart has a
scale (ticks with their values), a unit and a label on every bar, so it
reads the same printed in black and white.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_CEILING, Decimal
from html import escape

from markupsafe import Markup

WIDTH = 640
BAR = 22
GAP = 8
LABEL_W = 170
TICKS = 4


def nice_top(largest: Decimal) -> Decimal:
    """The smallest 1, 2, 2.5 or 5 × 10ⁿ at or above `largest` (1 when nothing is above 0)."""
    if largest <= 0:
        return Decimal(1)
    exponent = largest.adjusted()
    for step in (Decimal(1), Decimal(2), Decimal("2.5"), Decimal(5), Decimal(10)):
        top = step.scaleb(exponent)
        if top >= largest:
            return top
    return Decimal(10).scaleb(exponent)  # pragma: no cover - the loop always returns


def _fmt(value: Decimal, places: int) -> str:
    quantum = Decimal(1).scaleb(-places)
    return f"{value.quantize(quantum):,}"


def _tick_text(value: Decimal) -> str:
    if value == value.to_integral_value():
        return f"{int(value):,}"
    return f"{value.normalize():,}"


def bar_chart(
    items: Sequence[tuple[str, Decimal]], *, title: str, unit: str, places: int = 2
) -> Markup:
    """Horizontal bars of the magnitudes, each labelled with its signed value."""
    top = nice_top(max((abs(v) for _, v in items), default=Decimal(0)))
    plot = WIDTH - LABEL_W - 90
    height = 40 + len(items) * (BAR + GAP) + 30
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" '
        f'height="{height}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<text x="0" y="16" class="chart-title">{escape(title)} ({escape(unit)})</text>',
    ]
    axis_y = 30 + len(items) * (BAR + GAP)
    for i in range(TICKS + 1):
        value = top * i / TICKS
        x = LABEL_W + plot * i / TICKS
        parts.append(
            f'<line x1="{x:.1f}" y1="28" x2="{x:.1f}" y2="{axis_y}" class="chart-grid"/>'
            f'<text x="{x:.1f}" y="{axis_y + 16}" text-anchor="middle" class="chart-tick">'
            f"{escape(_tick_text(value))}</text>"
        )
    for row, (label, value) in enumerate(items):
        y = 32 + row * (BAR + GAP)
        width = abs(value) * plot / top  # pixels, from the Decimal itself
        sign = "neg" if value < 0 else "pos"
        parts.append(
            f'<text x="{LABEL_W - 6}" y="{y + BAR * 0.7:.1f}" text-anchor="end" '
            f'class="chart-label">{escape(label)}</text>'
            f'<rect x="{LABEL_W}" y="{y}" width="{width:.1f}" height="{BAR}" class="bar {sign}"/>'
            f'<text x="{LABEL_W + width + 4:.1f}" y="{y + BAR * 0.7:.1f}" class="chart-value">'
            f"{escape(_fmt(value, places))}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def column_chart(
    points: Sequence[tuple[str, Decimal]], *, title: str, unit: str, places: int = 3
) -> Markup:
    """Vertical columns over time (e.g. daily use), with a y scale and a label per column."""
    height, left, bottom, top_pad = 240, 60, 40, 30
    top = nice_top(max((v for _, v in points), default=Decimal(0)))
    plot_h = height - bottom - top_pad
    slot = (WIDTH - left - 10) / max(len(points), 1)
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" '
        f'height="{height}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<text x="0" y="16" class="chart-title">{escape(title)} ({escape(unit)})</text>',
    ]
    for i in range(TICKS + 1):
        value = top * i / TICKS
        y = height - bottom - plot_h * i / TICKS
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{WIDTH - 10}" y2="{y:.1f}" class="chart-grid"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="chart-tick">'
            f"{escape(_tick_text(value))}</text>"
        )
    every = max(1, len(points) // 10)  # label at most ~10 dates
    for i, (label, value) in enumerate(points):
        bar_h = max(value, Decimal(0)) * plot_h / top
        x = left + i * slot + slot * 0.15
        bar_y = height - bottom - bar_h
        parts.append(
            f'<rect x="{x:.1f}" y="{bar_y:.1f}" width="{slot * 0.7:.1f}" height="{bar_h:.1f}" '
            f'class="bar pos"><title>{escape(label)}: {escape(_fmt(value, places))}</title></rect>'
        )
        if i % every == 0:
            parts.append(
                f'<text x="{x + slot * 0.35:.1f}" y="{height - bottom + 16}" '
                f'text-anchor="middle" class="chart-tick">{escape(label)}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def ceiling(value: Decimal) -> Decimal:
    return value.to_integral_value(rounding=ROUND_CEILING)
