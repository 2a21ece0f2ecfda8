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
    for result in _all(run, with_flash=True):
        tag = f"{result.scenario.name} c{result.scenario.connections}"
        if result.unexpected_5xx():
            found.append(f"{tag}: {result.unexpected_5xx()} answers 5xx other than 503 (a bug per API.md)")
        if result.statuses.get(result.scenario.expected, 0) == 0:
            found.append(f"{tag}: no answer with the expected status {result.scenario.expected}")
    for result in _all(run):
        if result.scenario.name not in ("booking", "stack booking"):
            continue
        key = "stack booking" if result.scenario.name == "stack booking" else f"booking c{result.scenario.connections}"
        issued, confirmed = run.hot_db.get(key, (0, 0))
        if confirmed < result.statuses.get(201, 0) or issued != confirmed:
            found.append(
                f"{key}: {result.statuses.get(201, 0)} answers 201 but {confirmed} confirmed, issued_count {issued}"
            )
    return found + _room_failures(run.room) + _stack_failures(run)


def _all(run, *, with_flash: bool = False) -> list:
    found = [*run.results, *([run.flash] if with_flash and run.flash else [])]
    if run.room is not None:
        found += [r for r in (run.room.join, run.room.ask) if r is not None]
    if run.stack is not None:
        found += run.stack.results
    return found


def _room_failures(room) -> list[str]:
    """The waiting room's guarantees: every seat sold once, and an admitted user who books in time gets one."""
    if room is None:
        return []
    found = []
    seats = room.settings.seats
    if room.db != (seats, seats):
        found.append(f"waiting room: issued_count {room.db[0]}, {room.db[1]} confirmed; expected {seats}")
    if room.flow and room.seats_sold != seats:
        found.append(f"waiting room: {room.seats_sold} answers 201 to the crowd; expected {seats}")
    if room.admitted_not_201:
        found.append(
            f"waiting room: {room.admitted_not_201} admitted users did not get a seat "
            f"({room.flow.get('admitted_refused')}); API.md: an admitted user who books in time gets one"
        )
    errors = {k: n for k, n in {**room.flow.get("asks", {}), **room.flow.get("books", {})}.items() if k[:1] == "5"}
    bad = {k: n for k, n in errors.items() if not k.startswith("503")}
    if bad:
        found.append(f"waiting room: the crowd got 5xx other than 503: {bad}")
    return found


def _stack_failures(run) -> list[str]:
    stack = run.stack
    if stack is not None and (stack.healthz is None or stack.booking is None):
        return ["scale-out: did not finish"]
    return []


def warnings(run) -> list[str]:
    """What makes the figures less trustworthy without breaking a guarantee."""
    found = []
    if run.flash is not None and run.flash.finished_threads < run.flash.threads:
        answered = sum(1 for t in run.flash.trace if t.attempt == 1)
        found.append(f"flash sale: stopped at its deadline with {run.options.flash_users - answered} users unanswered")
    room = run.room
    if room is not None and room.join is not None:
        if room.joined < room.settings.users:
            found.append(f"waiting room: only {room.joined} of {room.settings.users} users got a place")
        if room.floods_done > room.opening:
            found.append(
                f"waiting room: the joins and the ask flood ended {room.floods_done - room.opening:.1f} s after the "
                "opening (the joins were slower than 0.6 x the sold-out answers)"
            )
        if room.flow.get("unfinished"):
            found.append(f"waiting room: {room.flow['unfinished']} users unfinished at the crowd's deadline")
    for result in _all(run):
        tag = f"{result.scenario.name} c{result.scenario.connections}"
        if result.wrapped and result.scenario.method == "POST":
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
