"""The reward curve of a local training job: its episode reward over timesteps, as a PNG.

On AWS the job's metrics become CloudWatch graphs through ``MetricDefinitions``; locally there is
no console, and a column of ``episode_reward_mean: ...`` lines is a poor way to judge whether a
policy learned. So when the script ends (completed, failed or stopped, as long as it printed some
metric lines) the runner reads the same metric from its log with the job's own
``MetricDefinitions`` regex (``episode_reward_mean`` when defined, else the first definition),
takes x from the ``timesteps: N`` on the same line (the log line number when a line has none)
and plots ``reward_curve.png`` next to the job's tarballs. Its path goes into the job's log, which
the ``local deploy`` progress display shows.

matplotlib is imported only here, lazily, with the non-interactive Agg canvas and no pyplot (no
global figure state: jobs run in threads of one emulator process). A missing matplotlib, no
definitions or no matching line is logged and never fails the job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .job import JobSpec
from .job_log import JobLog

__all__ = ["PREFERRED_METRIC", "REWARD_CURVE_NAME", "RewardSeries", "reward_series", "write"]

REWARD_CURVE_NAME = "reward_curve.png"
PREFERRED_METRIC = "episode_reward_mean"
_TIMESTEPS = re.compile(r"\btimesteps:\s*(\d+)")


class NoCurve(Exception):
    """Why there is no curve to draw, in words for the job's log."""


@dataclass
class RewardSeries:
    """The points of the curve: ``x`` in timesteps, or log line numbers (``x_label`` says)."""

    metric: str
    x: list[float]
    y: list[float]
    x_label: str


def _metric(definitions: list[dict[str, str]]) -> tuple[str, re.Pattern[str]]:
    if not definitions:
        raise NoCurve("the job has no MetricDefinitions")
    chosen = next((d for d in definitions if d["Name"] == PREFERRED_METRIC), definitions[0])
    try:
        return chosen["Name"], re.compile(chosen["Regex"])
    except re.error as error:
        raise NoCurve(f"the Regex of metric {chosen['Name']} does not compile: {error}") from None


def reward_series(lines: list[str], definitions: list[dict[str, str]]) -> RewardSeries:
    """The reward metric's values in ``lines``; raises NoCurve when there are none."""
    name, pattern = _metric(definitions)
    points: list[tuple[int, int | None, float]] = []
    for index, line in enumerate(lines):
        match = pattern.search(line)
        if match is None:
            continue
        try:
            value = float(match.group(1) if pattern.groups else match.group(0))
        except (TypeError, ValueError):
            continue
        steps = _TIMESTEPS.search(line)
        points.append((index + 1, int(steps.group(1)) if steps else None, value))
    if not points:
        raise NoCurve(f"no log line matched the Regex of metric {name}")
    if all(steps is not None for _, steps, _ in points):
        xs = [float(steps or 0) for _, steps, _ in points]
        return RewardSeries(name, xs, [v for *_, v in points], "timesteps")
    lines_x = [float(i) for i, *_ in points]
    return RewardSeries(name, lines_x, [v for *_, v in points], "log line number")


def plot(series: RewardSeries, path: Path, title: str) -> None:
    """Draw the series into a PNG at ``path`` (raises ImportError without matplotlib)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.plot(series.x, series.y, marker="o" if len(series.x) < 50 else None, linewidth=1.5)
    axes.set_xlabel(series.x_label)
    axes.set_ylabel(series.metric)
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")


def write(job: JobSpec, directory: Path, log: JobLog, status: str) -> Path | None:
    """Plot the job's reward curve into ``directory``; return its path, None when there is none
    (the reason is logged). Never raises: a curve is a convenience, not part of the job."""
    path = directory / REWARD_CURVE_NAME
    try:
        series = reward_series(list(log.lines), job.metric_definitions)
        plot(series, path, f"{job.name}: {series.metric}")
    except NoCurve as reason:
        log.info(f"No reward curve: {reason}")
        return None
    except ImportError as error:
        log.info(
            f"No reward curve: matplotlib is not installed ({error}); "
            "pip install -e '.[local]' brings it"
        )
        return None
    except Exception as error:
        log.info(f"No reward curve: plotting failed: {type(error).__name__}: {error}")
        return None
    log.info(
        f"reward curve: {path} ({len(series.x)} point{'s' if len(series.x) != 1 else ''} of "
        f"{series.metric} over "
        f"{series.x_label}; training status: {status})"
    )
    return path
