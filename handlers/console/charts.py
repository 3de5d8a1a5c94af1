"""Charts drawn on the server as SVG text: questions per day by intent (stacked bars),
outcomes (horizontal bars) and the escalation rate per day (a line). No script, no library,
nothing fetched at run time; every value is also in a <title> so a screen reader and a
hover tooltip both say what a bar means. Colours are SVG attributes (the console's CSP
allows no inline style)."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Sequence
from html import escape

from qopi_bot.report import AnswerRow

# A palette that stays distinct for colour-blind readers (Okabe-Ito), then greys.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000",
           "#7f7f7f", "#a6a6a6", "#c7c7c7")
FONT = 'font-family="system-ui, sans-serif" font-size="11"'


def days_between(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


def _nice_max(value: float) -> float:
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10_000):
        if value <= step:
            return float(step)
    return float(value)


def per_day_by_intent(rows: Sequence[AnswerRow], days: list[dt.date], width: int = 760, height: int = 240) -> tuple[str, list[tuple[str, str]]]:
    """Stacked bars; returns the SVG and the legend (intent, colour)."""
    counts: dict[dt.date, Counter[str]] = defaultdict(Counter)
    totals: Counter[str] = Counter()
    for r in rows:
        counts[r.created_at.date()][r.intent or "none"] += 1
        totals[r.intent or "none"] += 1
    intents = [name for name, _ in totals.most_common()]
    colour = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(intents)}
    left, bottom, top = 36, 22, 8
    plot_w, plot_h = width - left - 8, height - bottom - top
    peak = _nice_max(max((sum(c.values()) for c in counts.values()), default=1))
    slot = plot_w / max(1, len(days))
    bar = max(2.0, slot * 0.7)
    parts = [_axis(left, top, plot_w, plot_h, peak)]
    for i, day in enumerate(days):
        x = left + i * slot + (slot - bar) / 2
        y = top + plot_h
        for name in intents:
            n = counts[day][name]
            if not n:
                continue
            h = plot_h * n / peak
            y -= h
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{colour[name]}">'
                         f'<title>{day.isoformat()}: {escape(name)} {n}</title></rect>')
        if len(days) <= 14 or i % max(1, len(days) // 8) == 0:
            parts.append(f'<text x="{x + bar / 2:.1f}" y="{height - 6}" text-anchor="middle" {FONT} fill="#444">'
                         f'{day.strftime("%b %d")}</text>')
    return _svg(width, height, "Questions per day by intent", parts), [(n, colour[n]) for n in intents]


def outcomes(rows: Sequence[AnswerRow], width: int = 760) -> str:
    counts = Counter(r.outcome for r in rows).most_common()
    row_h, label_w = 26, 110
    height = max(1, len(counts)) * row_h + 10
    peak = max((n for _, n in counts), default=1)
    parts = []
    for i, (name, n) in enumerate(counts):
        y = 5 + i * row_h
        w = (width - label_w - 60) * n / peak
        parts.append(f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end" {FONT} fill="#222">{escape(name)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}" '
                     f'fill="{"#D55E00" if name == "escalated" else "#0072B2"}"><title>{escape(name)}: {n}</title></rect>')
        parts.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 16}" {FONT} fill="#222">{n}</text>')
    return _svg(width, height, "Answers by outcome", parts)


def escalation_rate(rows: Sequence[AnswerRow], days: list[dt.date], width: int = 760, height: int = 180) -> str:
    total: Counter[dt.date] = Counter()
    escalated: Counter[dt.date] = Counter()
    for r in rows:
        total[r.created_at.date()] += 1
        escalated[r.created_at.date()] += r.outcome == "escalated"
    left, bottom, top = 36, 22, 8
    plot_w, plot_h = width - left - 8, height - bottom - top
    slot = plot_w / max(1, len(days))
    parts = [_axis(left, top, plot_w, plot_h, 100.0, suffix="%")]
    points = []
    for i, day in enumerate(days):
        if not total[day]:
            continue
        rate = 100.0 * escalated[day] / total[day]
        x, y = left + i * slot + slot / 2, top + plot_h * (1 - rate / 100)
        points.append(f"{x:.1f},{y:.1f}")
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#D55E00"><title>{day.isoformat()}: '
                     f'{escalated[day]} of {total[day]} escalated ({rate:.0f}%)</title></circle>')
        if len(days) <= 14 or i % max(1, len(days) // 8) == 0:
            parts.append(f'<text x="{x:.1f}" y="{height - 6}" text-anchor="middle" {FONT} fill="#444">{day.strftime("%b %d")}</text>')
    if len(points) > 1:
        parts.insert(1, f'<polyline points="{" ".join(points)}" fill="none" stroke="#D55E00" stroke-width="2"/>')
    return _svg(width, height, "Escalation rate per day", parts)


def _axis(left: int, top: int, plot_w: float, plot_h: float, peak: float, suffix: str = "") -> str:
    lines = []
    for frac in (0, 0.5, 1):
        y = top + plot_h * (1 - frac)
        value = peak * frac
        label = f"{value:.0f}{suffix}" if value == int(value) else f"{value:.1f}{suffix}"
        lines.append(f'<line x1="{left}" x2="{left + plot_w:.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
                     f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" {FONT} fill="#666">{label}</text>')
    return "".join(lines)


def _svg(width: int, height: int, title: str, parts: list[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" role="img" '
            f'aria-label="{escape(title)}"><title>{escape(title)}</title>{"".join(parts)}</svg>')
