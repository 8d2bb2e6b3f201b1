"""Draws the per-stack row of the chart's Grafana dashboard into a PNG, from a real
Prometheus: every panel of the row, every query of the panel as the dashboard has it
(with `$namespace` and `$stack` filled in) through Prometheus's HTTP `query_range`
API, laid out on the dashboard's own grid, with the panels' titles, units and legends.
Panels whose query returns nothing say "no data", as Grafana does.

    render_dashboard.py --prometheus http://127.0.0.1:9090 --namespace webtoon \\
        --stack toon --start UNIX --end UNIX --out dashboard.png \\
        [--dashboard charts/webtoon-operator/files/dashboard.json] [--events EVENTS.json]

EVENTS.json, when given, is a list of {"start": UNIX, "end": UNIX, "label": TEXT}
shaded on every panel: what the load test did when.
"""

import argparse
import json
import math
import re
import sys
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator, MultipleLocator  # noqa: E402

# Grafana's classic palette, so the picture reads like the dashboard.
PALETTE = ["#7EB26D", "#EAB839", "#6ED0E0", "#EF843C", "#E24D42", "#1F78C1", "#BA43A9", "#705DA0"]
EVENT_COLOURS = ["#7EB26D", "#EF843C", "#E24D42", "#1F78C1"]


def stack_row(dashboard):
    """The first row panel's title and the panels that follow it, up to the next row."""
    panels = dashboard["panels"]
    for i, panel in enumerate(panels):
        if panel.get("type") == "row":
            row = []
            for p in panels[i + 1 :]:
                if p.get("type") == "row":
                    break
                row.append(p)
            return panel["title"], row
    raise SystemExit("the dashboard has no row of per-stack panels")


def query_range(prometheus, expr, start, end, step):
    params = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
    with urllib.request.urlopen(f"{prometheus}/api/v1/query_range?{params}", timeout=30) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise SystemExit(f"Prometheus refused {expr}: {body}")
    return body["data"]["result"]


def legend(fmt, labels):
    if not fmt:
        return json.dumps(labels) if labels else "value"
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), fmt)


def si(value, base, units):
    for unit in units[:-1]:
        if abs(value) < base:
            return value, unit
        value /= base
    return value, units[-1]


def short(value):
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        v, unit = si(value, 1000, ["", "k", "M", "G"])
        return f"{v:.3g}{unit}"
    return f"{value:.3g}"


def formatter(unit):
    """A tick formatter for a Grafana unit."""

    def fmt(value, _pos=None):
        if value is None or math.isnan(value):
            return ""
        if unit == "percentunit":
            return f"{value * 100:.3g}%"
        if unit == "reqps":
            return f"{short(value)} req/s"
        if unit == "s":
            if value == 0:
                return "0"
            if abs(value) < 1:
                return f"{value * 1000:.3g} ms"
            if abs(value) < 120:
                return f"{value:.3g} s"
            if abs(value) < 7200:
                return f"{value / 60:.3g} min"
            if abs(value) < 172800:
                return f"{value / 3600:.3g} h"
            return f"{value / 86400:.3g} d"
        if unit == "bytes":
            v, u = si(value, 1024, ["B", "KiB", "MiB", "GiB", "TiB"])
            return f"{v:.3g} {u}"
        if unit == "bool":
            return {0: "false", 1: "true"}.get(round(value), "") if abs(value - round(value)) < 1e-9 else ""
        if unit == "bool_on_off":
            return {0: "off", 1: "on"}.get(round(value), "") if abs(value - round(value)) < 1e-9 else ""
        return short(value)

    return FuncFormatter(fmt)


def overrides_by_ref(panel):
    """refId -> the properties a `byFrameRefID` override gives it."""
    out = {}
    for o in panel.get("fieldConfig", {}).get("overrides", []):
        if o.get("matcher", {}).get("id") == "byFrameRefID":
            out[o["matcher"]["options"]] = {p["id"]: p["value"] for p in o.get("properties", [])}
    return out


def draw_panel(ax, panel, args, colour_of, events):
    unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "short")
    overrides = overrides_by_ref(panel)
    right = None
    lines = 0
    lowest, highest = math.inf, -math.inf
    for target in panel.get("targets", []):
        expr = target["expr"].replace("$namespace", args.namespace).replace("$stack", args.stack)
        override = overrides.get(target.get("refId"), {})
        axis = ax
        if override.get("custom.axisPlacement") == "right":
            if right is None:
                right = ax.twinx()
                right.yaxis.set_major_formatter(formatter(override.get("unit", unit)))
                if override.get("unit", "").startswith("bool"):
                    right.set_ylim(-0.1, 1.7)
                    right.set_yticks([0, 1])
            axis = right
        style = "--" if override.get("custom.lineStyle", {}).get("fill") == "dash" else "-"
        for series in query_range(args.prometheus, expr, args.start, args.end, args.step):
            times = [datetime.fromtimestamp(float(t), tz=timezone.utc) for t, _ in series["values"]]
            values = [float(v) for _, v in series["values"]]
            if axis is ax:
                finite = [v for v in values if not math.isnan(v)]
                lowest = min([lowest] + finite)
                highest = max([highest] + finite)
            name = legend(target.get("legendFormat"), series["metric"])
            axis.plot(times, values, style, label=name, color=colour_of(name), linewidth=1.6)
            lines += 1
    for i, event in enumerate(events):
        ax.axvspan(
            datetime.fromtimestamp(event["start"], tz=timezone.utc),
            datetime.fromtimestamp(event["end"], tz=timezone.utc),
            color=EVENT_COLOURS[i % len(EVENT_COLOURS)],
            alpha=0.08,
            linewidth=0,
        )
    ax.set_title(panel["title"], loc="left", fontsize=11, fontweight="bold", color="#222")
    ax.set_xlim(
        datetime.fromtimestamp(args.start, tz=timezone.utc),
        datetime.fromtimestamp(args.end, tz=timezone.utc),
    )
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=timezone.utc))
    ax.xaxis.set_major_locator(mdates.MinuteLocator(byminute=range(0, 60, 2)))
    ax.yaxis.set_major_formatter(formatter(unit))
    ax.yaxis.set_major_locator(MaxNLocator(nbins=5))
    ax.grid(True, color="#ddd", linewidth=0.6)
    ax.tick_params(labelsize=8.5, colors="#444")
    for spine in ax.spines.values():
        spine.set_color("#bbb")
    if lines == 0:
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", fontsize=14, color="#999")
        ax.set_yticks([])
        if right is not None:
            right.remove()
        return
    if unit in ("bool",):
        ax.set_ylim(-0.1, 1.7)
        ax.set_yticks([0, 1])
    else:
        # From zero, as Grafana draws counts and rates, with room above the highest
        # line for the legend; a flat zero gets a unit of room.
        top = highest * 1.25 if highest > 0 else 1
        ax.set_ylim(min(0, lowest) if lowest != math.inf else 0, top)
        if unit == "bytes":
            _, top = ax.get_ylim()
            ax.yaxis.set_major_locator(MultipleLocator(2 ** math.floor(math.log2(max(top, 1) / 4))))
    handles, labels = ax.get_legend_handles_labels()
    if right is not None:
        h2, l2 = right.get_legend_handles_labels()
        handles += h2
        labels += l2
    ax.legend(handles, labels, loc="upper left", fontsize=8, framealpha=0.85, ncol=2 if len(labels) > 3 else 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dashboard", default=str(Path(__file__).resolve().parents[2] / "charts/webtoon-operator/files/dashboard.json"))
    parser.add_argument("--prometheus", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--stack", required=True)
    parser.add_argument("--start", type=float, required=True)
    parser.add_argument("--end", type=float, required=True)
    parser.add_argument("--step", type=float, default=5)
    parser.add_argument("--events")
    parser.add_argument("--subtitle", default="")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    dashboard = json.loads(Path(args.dashboard).read_text())
    title, panels = stack_row(dashboard)
    events = json.loads(Path(args.events).read_text()) if args.events else []
    top = min(p["gridPos"]["y"] for p in panels)
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels) - top

    # The dashboard's grid: 24 columns, rows of `unit` inches; each panel keeps room
    # for its title above and its time axis below.
    width, unit, header = 20.0, 0.36, 1.25
    left_margin, right_margin = 0.2, 0.2
    height = rows * unit + header + 0.2
    column = (width - left_margin - right_margin) / 24
    fig = plt.figure(figsize=(width, height), dpi=100, facecolor="white")
    colours = {}

    def colour_of(name):
        if name not in colours:
            colours[name] = PALETTE[len(colours) % len(PALETTE)]
        return colours[name]

    for panel in panels:
        g = panel["gridPos"]
        x0 = left_margin + g["x"] * column + 0.85
        x1 = left_margin + (g["x"] + g["w"]) * column - 0.45
        y_top = header + (g["y"] - top) * unit + 0.35
        y_bottom = header + (g["y"] - top + g["h"]) * unit - 0.3
        ax = fig.add_axes([x0 / width, 1 - y_bottom / height, (x1 - x0) / width, (y_bottom - y_top) / height])
        colours.clear()
        draw_panel(ax, panel, args, colour_of, events)

    def line(inches):
        return 1 - inches / height

    row_title = title.replace("$namespace", args.namespace).replace("$stack", args.stack)
    fig.text(1.05 / width, line(0.25), f"{dashboard['title']} — {row_title}", fontsize=17, fontweight="bold", va="top")
    when = (
        f"{datetime.fromtimestamp(args.start, tz=timezone.utc):%Y-%m-%d %H:%M}–"
        f"{datetime.fromtimestamp(args.end, tz=timezone.utc):%H:%M} UTC"
    )
    fig.text(1.05 / width, line(0.62), f"{when}. {args.subtitle}", fontsize=10.5, color="#444", va="top")
    x = 1.05 / width
    for i, e in enumerate(events):
        t = fig.text(x, line(0.92), f"■ {e['label']}", fontsize=10.5, va="top", color=EVENT_COLOURS[i % len(EVENT_COLOURS)])
        fig.canvas.draw()
        x += t.get_window_extent().width / fig.bbox.width + 0.02
    fig.savefig(args.out, dpi=100, facecolor="white")
    print(f"wrote {args.out} ({len(panels)} panels)", file=sys.stderr)


if __name__ == "__main__":
    main()
