"""Draws every curve `make bench` left in a results directory (bench/results/*.json) as a PNG
beside it, with Debian's python3-matplotlib: /usr/bin/python3 bench/plot.py bench/results"""

import json
import pathlib
import sys

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)


def draw(curve: dict, out: pathlib.Path) -> None:
    figure, axes = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    for series in curve["series"]:
        xs = [point[0] for point in series["points"]]
        ys = [point[1] for point in series["points"]]
        axes.plot(xs, ys, marker="o", label=series["label"])
    if curve["logX"]:
        axes.set_xscale("log")
    if curve["logY"]:
        axes.set_yscale("log")
    else:
        # From zero, with room above the lines for the legend.
        top = max(point[1] for series in curve["series"] for point in series["points"])
        axes.set_ylim(0, top * 1.5)
    xs = sorted({point[0] for series in curve["series"] for point in series["points"]})
    # The measured sizes as the x ticks, written out (1,000 rather than 10^3).
    axes.set_xticks(xs, [f"{x:,g}" for x in xs])
    axes.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    axes.set_title(curve["title"])
    axes.set_xlabel(curve["xLabel"])
    axes.set_ylabel(curve["yLabel"])
    axes.grid(True, which="major", alpha=0.3)
    if len(curve["series"]) > 1:
        axes.legend(fontsize="small")
    figure.tight_layout()
    # No timestamps in the file, so an unchanged curve is an unchanged PNG.
    figure.savefig(out, metadata={"Software": None})
    plt.close(figure)


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: plot.py RESULTS_DIR")
    results = pathlib.Path(sys.argv[1])
    for source in sorted(results.glob("*.json")):
        draw(json.loads(source.read_text()), source.with_suffix(".png"))
        print(f"wrote {source.with_suffix('.png')}")


main()
