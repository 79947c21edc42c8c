# SPDX-License-Identifier: MIT
"""SVG charts of one comparison (bench/compare.py --plot DIR), from the table compare.py's
aggregate() makes, so a live run and --from-raw draw the same thing.

One chart per family of figures, each a grid of panels, one panel per scenario, one horizontal
bar per server (in the table's order, sockserv's rows in colour, the peers in grey, the ceiling
darker and repeated as a dotted line across its panel); a cell that was not measured says n/a or
error where its bar would be:

    cpu-per-message.svg         server CPU µs per message (the load scenarios)
    throughput.svg              messages/s, or MB/s for the bulk streams
    memory-per-connection.svg   server KiB per held connection
    cpu-per-handshake.svg       --tls: server CPU µs per full or resumed handshake
    handshakes.svg              --tls: handshakes/s

--tls runs write the same names with a "tls-" prefix, so both suites can share a directory.
Needs matplotlib (Debian: python3-matplotlib; scripts/bootstrap.sh bench); nothing else does.
"""
import math
import os
import textwrap

import matplotlib

matplotlib.use("Agg")  # no display: files only
import matplotlib.pyplot as plt  # noqa: E402 (after use())
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: E402

SOCKSERV, PEER, CEILING_COLOUR = "#1f6fc5", "#a9a9a9", "#4d4d4d"
COLUMNS = 3  # panels per row: the chart stays readable at a Markdown page's width

plt.rcParams.update({
    "svg.fonttype": "none",    # text stays text: searchable, and smaller files
    "svg.hashsalt": "sockserv",  # stable element ids: a regenerated chart diffs cleanly
    "font.size": 9,
    "axes.titlesize": 9,
})


def _families():
    """(file name, chart title, scenario kind, value of a row, unit) of every chart."""
    def throughput(key):
        return ("mb_per_s", "MB/s") if key.startswith("bulk") else ("msgs_per_s", "messages/s")
    return [
        ("cpu-per-message.svg", "Server CPU per message (less is better)", "load",
         lambda key: ("server_cpu_us_per_msg", "µs per message")),
        ("throughput.svg", "Throughput (more is better)", "load", throughput),
        ("memory-per-connection.svg", "Server memory per held connection (less is better)", "hold",
         lambda key: ("server_kib_per_conn", "KiB per connection")),
        ("cpu-per-handshake.svg", "Server CPU per TLS handshake (less is better)", "handshake",
         lambda key: ("server_cpu_us_per_msg", "µs per handshake")),
        ("handshakes.svg", "TLS handshakes per second (more is better)", "handshake",
         lambda key: ("msgs_per_s", "handshakes/s")),
    ]


def _number(value):
    """1.23, 12.3, 123, 12 k, 1.23 M: short enough to sit at a bar's end or on an axis."""
    if value >= 1e6:
        return f"{value / 1e6:.2f} M"
    if value >= 1e4:
        return f"{value / 1e3:.0f} k"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _axis_number(value, _position):
    return _number(value).replace(".00", "") if value >= 1e4 else f"{value:g}"


def _colour(name, ceiling):
    if name == ceiling:
        return CEILING_COLOUR
    return SOCKSERV if name.startswith("sockserv") else PEER


def _panel(ax, title, unit, names, rows, metric, ceiling):
    values = [rows[n].get(metric) if "na" not in rows[n] and "error" not in rows[n] else None
              for n in names]
    y = range(len(names))
    ax.barh(y, [v or 0 for v in values], color=[_colour(n, ceiling) for n in names])
    top = max((v for v in values if v), default=1.0)
    ax.set_xlim(0, top * 1.3)  # room for the numbers at the bars' ends
    for i, (name, v) in enumerate(zip(names, values)):
        if v is None:
            text = "n/a" if "na" in rows[name] else "error"
            ax.text(top * 0.02, i, text, va="center", style="italic", color="#666666")
        else:
            ax.text(v + top * 0.02, i, _number(v), va="center", fontsize=7)
    ceiling_value = rows.get(ceiling, {}).get(metric)
    if ceiling_value:
        ax.axvline(ceiling_value, color=CEILING_COLOUR, linestyle=":", linewidth=1)
    ax.set_title("\n".join(textwrap.wrap(title, 46)))
    ax.set_xlabel(unit)
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.xaxis.set_major_formatter(FuncFormatter(_axis_number))
    ax.invert_yaxis()  # the table's first row on top
    ax.grid(axis="x", color="#e0e0e0", linewidth=0.5)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _chart(path, title, scenarios, names, table, value_of, ceiling):
    columns = min(COLUMNS, len(scenarios))
    rows_of_panels = math.ceil(len(scenarios) / columns)
    height = 0.9 + rows_of_panels * (0.8 + 0.22 * len(names))
    fig, axes = plt.subplots(rows_of_panels, columns, sharey=True, squeeze=False,
                             figsize=(max(7.0, 2.2 + 3.1 * columns), height))
    for ax, (key, scenario_title) in zip(axes.flat, scenarios):
        metric, unit = value_of(key)
        _panel(ax, scenario_title, unit, names, table[key], metric, ceiling)
    for ax in list(axes.flat)[len(scenarios):]:
        ax.set_visible(False)
    axes[0][0].set_yticks(range(len(names)), names)
    for ax_row in axes:
        ax_row[0].tick_params(axis="y", labelleft=True)
    fig.suptitle(title, fontweight="bold")
    fig.legend(handles=[Patch(color=SOCKSERV, label="sockserv"), Patch(color=PEER, label="peers"),
                        Patch(color=CEILING_COLOUR, label=f"{ceiling} (dotted line)")],
               loc="lower center", ncol=3, frameon=False)
    fig.tight_layout(rect=(0, 0.35 / height, 1, 1))  # room for the legend below
    fig.savefig(path, format="svg", metadata={"Date": None})  # no timestamp: stable files
    plt.close(fig)


def write_charts(directory, table, names, scenarios, kind_of, ceiling, subtitle, prefix=""):
    """Writes the charts of `table` (scenario -> server -> row, as compare.aggregate makes it)
    into `directory`; `scenarios` are (key, title) pairs in order, `kind_of(key)` is compare's
    kind() ("load", "hold", "handshake"). Returns the paths written."""
    os.makedirs(directory, exist_ok=True)
    written = []
    for filename, title, family, value_of in _families():
        chosen = [(k, t) for k, t in scenarios if kind_of(k) == family and k in table]
        if not chosen:
            continue
        path = os.path.join(directory, prefix + filename)
        _chart(path, f"{title}\n{subtitle}", chosen, names, table, value_of, ceiling)
        written.append(path)
    return written
