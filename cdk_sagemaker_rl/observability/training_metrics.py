"""Training metrics (the estimator's metric definitions) as CloudWatch search expressions.

SageMaker publishes each metric definition of a training job to the ``/aws/sagemaker/TrainingJobs``
namespace with one dimension, ``Host`` = ``<training job name>/algo-<n>``. An estimator's jobs are
named ``<name base>-<YYYY-MM-DD-HH-MM-SS-mmm>``, a new name every run, so no fixed metric can follow
them: a ``SEARCH`` finds every run of the last two weeks, one line per run.

How the search stays on this estimator's jobs
---------------------------------------------
CloudWatch matches search terms by *token*: names are split at non-alphanumeric characters, at
camel-case humps and where digits start, and a term such as ``Host=cartpole-dev-1a2b3c4d`` matches
every ``Host`` value holding that run of tokens *anywhere*, not only at its start. So:

* ``MetricName="..."`` is an exact match (the instance metrics ``CPUUtilization`` etc. share the
  namespace and dimension);
* ``Host=<name base>`` needs the whole base, hash included (default bases end in a hash of the stack
  and construct path, so no other estimator's job holds it);
* ``Host=algo-1`` keeps the first instance only, as the SageMaker SDK's ``TrainingJobAnalytics``
  does, so a distributed run is one line, not one per instance;
* ``NOT Host=<other base>`` for every other monitored estimator of the app whose base holds this
  one's tokens (``cartpole`` inside ``my-cartpole``): the in-app case the name check in
  ``_naming`` does not cover.

What remains: an estimator of *another* app in the same account and region whose user-chosen job
name base holds this base's tokens (``job_name="cartpole"`` here, ``job_name="cartpole-v2"``
there) shows up too. Default bases are not affected.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable, Mapping, Sequence

from aws_cdk import Duration, Lazy
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import IConstruct

from .._lazy import Current
from .._naming import MAX_JOB_NAME_BASE, SAGEMAKER_NAME, SAGEMAKER_NAME_RULE
from .._tokens import is_token_string
from ..errors import invalid
from .options import SEE

#: Where SageMaker publishes training metrics (metric definitions and instance metrics).
NAMESPACE = "/aws/sagemaker/TrainingJobs"
#: A search expression's limit (CloudWatch: "maximum search expression query size").
MAX_SEARCH_LENGTH = 1024
#: The legend of each run's line: its ``Host`` (``<job name>/algo-1``).
HOST_LABEL = "${PROP('Dim.Host')}"
#: Statistics a graph of a training metric can use.
STATISTICS = ("Average", "Maximum", "Minimum", "SampleCount", "Sum")
#: Characters an exact-match term escapes with a backslash (CloudWatch search syntax).
_ESCAPED = re.compile(r'(["\\()])')


def _exact(value: str) -> str:
    return _ESCAPED.sub(r"\\\1", value)


def _check_metric_name(metric_name: object) -> str:
    if not isinstance(metric_name, str) or not 1 <= len(metric_name) <= 255:
        raise invalid(
            "metric_name", metric_name, "a metric definition's Name, 1-255 characters", see=SEE
        )
    if "'" in metric_name or is_token_string(metric_name):
        raise invalid(
            "metric_name",
            metric_name,
            "a literal name without single quotes (they end a CloudWatch SEARCH term)",
            see=SEE,
        )
    return metric_name


def search_expression(
    name_base: str,
    metric_name: str,
    *,
    statistic: str = "Average",
    period: Duration | None = None,
    excluding: Sequence[str] = (),
) -> str:
    """The ``SEARCH(...)`` text for ``metric_name`` of the jobs named ``<name_base>-...``."""
    terms = [f'MetricName="{_exact(metric_name)}"', f"Host={name_base}", "Host=algo-1"]
    terms += [f"NOT Host={other}" for other in excluding]
    seconds = int((period or Duration.minutes(1)).to_seconds())
    schema = f'{{"{NAMESPACE}",Host}}'
    return f"SEARCH('{schema} {' '.join(terms)}', '{statistic}', {seconds})"


def check_name_base(value: object) -> str:
    """A training job name base (tokens pass: SageMaker checks them at deploy time)."""
    if isinstance(value, str) and (
        is_token_string(value) or (SAGEMAKER_NAME.match(value) and len(value) <= MAX_JOB_NAME_BASE)
    ):
        return value
    allowed = (
        f"the estimator's job-name base: {SAGEMAKER_NAME_RULE}, at most {MAX_JOB_NAME_BASE} "
        "characters (a run's name appends -YYYY-MM-DD-HH-MM-SS-mmm)"
    )
    raise invalid("name_base", value, allowed, see=SEE)


def _check(name_base: object, statistic: object, period: object) -> tuple[str, str, Duration]:
    base = check_name_base(name_base)
    if statistic not in STATISTICS:
        raise invalid("statistic", statistic, STATISTICS, see=SEE)
    if not isinstance(period, Duration) or period.to_seconds() < 60 or period.to_seconds() % 60:
        raise invalid("period", period, "an aws_cdk.Duration of whole minutes", see=SEE)
    return base, str(statistic), period


def training_metric(
    name_base: str,
    metric_name: str,
    *,
    period: Duration | None = None,
    statistic: str = "Average",
    label: str | None = None,
    excluding: Sequence[str] = (),
) -> cloudwatch.IMetric:
    """``metric_name`` of every training run named ``<name_base>-...``: one line per run.

    For graphs only: CloudWatch cannot alarm on a search expression (it may return several time
    series). ``excluding`` lists other job-name bases whose runs must not match (see the module
    docstring); ``label`` defaults to each run's ``Host``. Runs that reported within the last two
    weeks are found (CloudWatch's search window).
    """
    base, stat, every = _check(name_base, statistic, period or Duration.minutes(1))
    name = _check_metric_name(metric_name)
    expression = search_expression(base, name, statistic=stat, period=every, excluding=excluding)
    return _search(expression, every, label)


def _search(expression: str, period: Duration, label: str | None) -> cloudwatch.IMetric:
    if not is_token_string(expression) and len(expression) > MAX_SEARCH_LENGTH:
        raise invalid(
            "training metric search",
            expression,
            f"at most {MAX_SEARCH_LENGTH} characters (CloudWatch); use a shorter metric name",
            see=SEE,
        )
    return cloudwatch.SearchExpression(
        expression=expression, label=HOST_LABEL if label is None else label, period=period
    )


def ordered_metric_names(
    definitions: Sequence[Mapping[str, str]], chosen: Sequence[str] | None
) -> list[str]:
    """The names to chart: ``chosen`` as given, else every definition with rewards first.

    Reward is what an RL operator looks at first, so it leads; the other definitions keep the
    order they were given in.
    """
    names = [definition["Name"] for definition in definitions]
    if chosen is None:
        return sorted(names, key=lambda name: "reward" not in name.lower())
    for name in chosen:
        if name not in names:
            raise invalid(
                "Monitoring training_metric_names", name, names or ["(none defined)"], see=SEE
            )
    return list(chosen)


# ------------------------------------------------------------------------------------ one app
_MONITORED: weakref.WeakKeyDictionary[IConstruct, list[str]] = weakref.WeakKeyDictionary()


#: CloudWatch's token boundaries, split as finely as it may: camel-case humps, digit runs.
_TOKEN = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def _tokens(base: str) -> list[str]:
    return [token.lower() for token in _TOKEN.findall(base)]


def holds(outer: str, inner: str) -> bool:
    """Whether ``inner``'s tokens appear in ``outer`` as a run that starts and ends at token
    boundaries of ``outer`` (what a partial search term matches; delimiters and case aside)."""
    text = "".join(_tokens(outer))
    wanted = "".join(_tokens(inner))
    bounds, at = {0}, 0
    for token in _tokens(outer):
        at += len(token)
        bounds.add(at)
    start = text.find(wanted)
    while start != -1:
        if start in bounds and start + len(wanted) in bounds:
            return True
        start = text.find(wanted, start + 1)
    return False


def _like_own_run(mine: list[str], other: list[str]) -> bool:
    """A base that is this one plus digits (``cartpole-2024``) holds the start of this one's own
    job names (``cartpole-2024-05-...``): excluding it would hide this estimator's runs."""
    return other[: len(mine)] == mine and all(token.isdigit() for token in other[len(mine) :])


def register_base(scope: IConstruct, name_base: str) -> Callable[[], list[str]]:
    """Record ``name_base`` for its app; the returned function lists, at synth, the other bases
    of the app whose jobs this base's search would also match (to exclude them)."""
    bases = _MONITORED.setdefault(scope.node.root, [])
    if not is_token_string(name_base):
        bases.append(name_base)

    def containing() -> list[str]:
        if is_token_string(name_base):
            return []
        mine = _tokens(name_base)
        return sorted(
            {
                other
                for other in bases
                if _tokens(other) != mine
                and holds(other, name_base)
                and not _like_own_run(mine, _tokens(other))
            }
        )

    return containing


def app_training_metric(
    name_base: str,
    metric_name: str,
    excluding: Callable[[], list[str]],
    *,
    period: Duration | None = None,
    statistic: str = "Average",
) -> cloudwatch.IMetric:
    """:func:`training_metric` whose exclusions are read at synth (estimators created later in
    the app count too); exclusions that would break the 1,024-character limit are dropped."""
    base, stat, every = _check(name_base, statistic, period or Duration.minutes(1))
    name = _check_metric_name(metric_name)
    # Checked now without exclusions: a name too long for any search fails at construction.
    _search(search_expression(base, name, statistic=stat, period=every), every, None)

    def render() -> str:
        kept: list[str] = []
        for other in excluding():
            candidate = search_expression(
                base, name, statistic=stat, period=every, excluding=[*kept, other]
            )
            if len(candidate) <= MAX_SEARCH_LENGTH:
                kept.append(other)
        return search_expression(base, name, statistic=stat, period=every, excluding=kept)

    return _search(Lazy.uncached_string(Current(render)), every, None)
