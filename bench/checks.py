"""Judge a run: the guarantees that must hold, the signs the figures are less trustworthy, the server log."""

import re
from collections import Counter
from pathlib import Path

LOG_LINE = re.compile(r"^\S+ \S+ (?P<level>[A-Z]+) (?P<logger>\S+) \[[^\]]*\] (?P<message>.*)$")
GUNICORN_LINE = re.compile(r"^\[[^\]]+\] \[\d+\] \[(?P<level>[A-Z]+)\] (?P<message>.*)$")
VARIABLE = re.compile(r"[0-9a-f]{8}-[0-9a-f-]{27}|\d+")


def failures(run) -> list[str]:
    """The broken guarantees, and the signs that the tool itself did not work; any one fails the run."""
    found = []
    options, sale = run.options, run.sale
    if run.invariants[0] != 0:
        found.append("check_invariants reported a violation")
    issued, confirmed = run.flash_db
    if issued != options.flash_seats or confirmed != options.flash_seats:
        found.append(f"flash sale: issued_count {issued}, {confirmed} confirmed; expected {options.flash_seats}")
    if sale is None or sale.counts["201"] != options.flash_seats:
        found.append(f"flash sale: {sale.counts['201'] if sale else 0} answers 201; expected {options.flash_seats}")
    for result in [*run.results, *([run.flash] if run.flash else [])]:
        tag = f"{result.scenario.name} c{result.scenario.connections}"
        if result.unexpected_5xx():
            found.append(f"{tag}: {result.unexpected_5xx()} answers 5xx other than 503 (a bug per API.md)")
        if result.statuses.get(result.scenario.expected, 0) == 0:
            found.append(f"{tag}: no answer with the expected status {result.scenario.expected}")
    return found


def warnings(run) -> list[str]:
    """What makes the figures less trustworthy without breaking a guarantee."""
    found = []
    if run.flash is not None and run.flash.finished_threads < run.flash.threads:
        answered = sum(1 for t in run.flash.trace if t.attempt == 1)
        found.append(f"flash sale: stopped at its deadline with {run.options.flash_users - answered} users unanswered")
    for result in run.results:
        tag = f"{result.scenario.name} c{result.scenario.connections}"
        if result.wrapped:
            found.append(f"{tag}: the token list ran out {result.wrapped} times (raise --users)")
        if any(result.errors.get(kind) for kind in ("connect", "read", "write", "timeout")):
            found.append(f"{tag}: socket errors {result.errors}")
    return found


def server_log(path: Path) -> list[tuple[str, int]]:
    """Count the server's log lines by level, logger and message (ids and numbers folded)."""
    counts: Counter[str] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        match = LOG_LINE.match(line) or GUNICORN_LINE.match(line)
        if match is None:
            continue
        parts = match.groupdict()
        message = VARIABLE.sub("N", parts["message"])[:110]
        counts[f"{parts['level']} {parts.get('logger') or 'gunicorn'}: {message}"] += 1
    return counts.most_common(15)
