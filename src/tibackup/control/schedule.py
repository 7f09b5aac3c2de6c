"""When a BackupSchedule takes a backup: parse its schedule and decide, for a given ``now``, what to do.

Pure: the caller reads the state, passes the time, and carries out the decision.
Semantics (TiDB Operator's, made explicit):
- the first backup is taken at the first tick after the schedule was created;
- missed ticks collapse into one backup, named after the latest missed tick;
- no overlap: a tick that comes while the last backup is unfinished is skipped, and stays skipped;
- a paused schedule takes no backups, and ticks passed while paused are skipped too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from croniter import croniter
from croniter.croniter import CroniterError

from tibackup.control.naming import LABEL_SCHEDULE, backup_name
from tibackup.errors import InvalidSpecError
from tibackup.resources.backup_schedule import BackupSchedule
from tibackup.resources.duration import parse_positive_duration
from tibackup.resources.meta import utc
from tibackup.resources.validation import DNS1123_LABEL_MAX, validate_backup_spec, validate_meta

FIELD = "spec.schedule"
# A schedule's name is the value of its Backups' schedule label (and the head of their names).
MAX_SCHEDULE_NAME = DNS1123_LABEL_MAX
_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_NAMES = "jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|sun|mon|tue|wed|thu|fri|sat"
# One cron field as the standard 5-field syntax has it: lists of *, ?, values or ranges, with /step.
_ATOM = rf"(\d+|{_NAMES})"
_TERM = rf"(\*|\?|{_ATOM}(-{_ATOM})?)(/\d+)?"
_FIELD_SYNTAX = re.compile(rf"{_TERM}(,{_TERM})*", re.IGNORECASE)
_HELP = (
    "use 5 cron fields (minute hour day-of-month month day-of-week), @hourly, @daily, @weekly, "
    "@monthly, @yearly or @every <duration>"
)


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule: either a 5-field cron expression (in UTC) or a fixed interval."""

    expression: str
    cron: str | None = None
    every: timedelta | None = None

    def next_after(self, t: datetime) -> datetime:
        """The first tick strictly after ``t`` (UTC)."""
        t = utc(t)
        if self.every is not None:
            # As Go's cron @every: from t truncated to the second, one interval later.
            return t.replace(microsecond=0) + self.every
        assert self.cron is not None
        return utc(croniter(self.cron, t).get_next(datetime))

    def latest_at_or_before(self, t: datetime, after: datetime) -> datetime | None:
        """The last tick in ``(after, t]``, or None when there is none."""
        t, after = utc(t), utc(after)
        first = self.next_after(after)
        if first > t:
            return None
        if self.every is not None:
            steps = (t - first) // self.every
            return first + steps * self.every
        assert self.cron is not None
        latest = utc(croniter(self.cron, t + timedelta(microseconds=1)).get_prev(datetime))
        return max(latest, first)


def parse_schedule(expr: str) -> Schedule:
    """Parse ``spec.schedule``; anything but 5-field cron or a known @ form is rejected, never guessed."""
    text = " ".join(str(expr).split())
    if not text:
        raise InvalidSpecError(FIELD, f"empty schedule; {_HELP}")
    if text.startswith("@"):
        word, _, rest = text.partition(" ")
        word = word.lower()
        if word == "@every":
            if not rest:
                raise InvalidSpecError(FIELD, "@every needs a duration, e.g. @every 6h")
            try:
                every = parse_positive_duration(rest, FIELD)
            except InvalidSpecError as exc:
                raise InvalidSpecError(FIELD, f"{text!r}: {exc.message.split(': ', 1)[-1]}") from None
            if every < timedelta(seconds=1):
                raise InvalidSpecError(FIELD, f"{text!r}: the interval must be at least 1s")
            return Schedule(expression=text, every=every)
        if word in _MACROS and not rest:
            return Schedule(expression=text, cron=_MACROS[word])
        raise InvalidSpecError(FIELD, f"{text!r} is not a known schedule; {_HELP}")
    fields = text.split(" ")
    if len(fields) != 5:
        raise InvalidSpecError(FIELD, f"{text!r} has {len(fields)} fields, cron needs exactly 5; {_HELP}")
    for name, value in zip(("minute", "hour", "day-of-month", "month", "day-of-week"), fields, strict=True):
        if not _FIELD_SYNTAX.fullmatch(value):
            raise InvalidSpecError(FIELD, f"{text!r}: the {name} field {value!r} is not valid cron syntax")
    try:
        croniter(text)
    except (CroniterError, ValueError, KeyError) as exc:
        raise InvalidSpecError(FIELD, f"{text!r} is not a valid cron expression ({exc}); {_HELP}") from None
    return Schedule(expression=text, cron=text)


class Action(StrEnum):
    CREATE = "create"  # create the Backup named in the decision now
    SKIP = "skip"  # a tick is due but the last backup is unfinished: record the skip
    PAUSED = "paused"  # the schedule is paused (a due tick, if any, is recorded as skipped)
    WAIT = "wait"  # nothing due: come back at next_backup_time


@dataclass(frozen=True)
class ScheduleState:
    """What the schedule controller knows; the times come from the BackupSchedule's status."""

    created: datetime
    last_backup_time: datetime | None = None
    last_skipped: datetime | None = None
    last_backup_running: bool = False

    @classmethod
    def of(cls, schedule: BackupSchedule, last_backup_running: bool, created: datetime) -> ScheduleState:
        """The state of ``schedule``; ``created`` is used when its metadata has no creationTimestamp."""
        return cls(
            created=schedule.metadata.creation_timestamp or created,
            last_backup_time=schedule.status.last_backup_time,
            last_skipped=schedule.status.last_skipped,
            last_backup_running=last_backup_running,
        )


@dataclass(frozen=True)
class ScheduleDecision:
    action: Action
    tick: datetime | None = None  # the scheduled time acted on (create/skip/paused)
    backup_name: str | None = None  # for create
    reason: str | None = None  # for skip/paused
    next_backup_time: datetime | None = None  # the next tick after this decision; None when paused


def decide(schedule: BackupSchedule, state: ScheduleState, now: datetime) -> ScheduleDecision:
    """What the schedule should do at ``now``. Raises InvalidSpecError for a bad ``spec.schedule``."""
    parsed = parse_schedule(schedule.spec.schedule)
    now = utc(now)
    reference = max(utc(t) for t in (state.created, state.last_backup_time, state.last_skipped) if t)
    tick = parsed.latest_at_or_before(now, after=reference)
    if schedule.spec.pause:
        return ScheduleDecision(Action.PAUSED, tick=tick, reason="the schedule is paused (spec.pause)")
    if tick is None:
        return ScheduleDecision(Action.WAIT, next_backup_time=parsed.next_after(reference))
    following = parsed.next_after(tick)  # after now, as tick is the latest due one
    if state.last_backup_running:
        return ScheduleDecision(
            Action.SKIP,
            tick=tick,
            reason="the previous backup has not finished; backups of one schedule never overlap",
            next_backup_time=following,
        )
    return ScheduleDecision(
        Action.CREATE,
        tick=tick,
        backup_name=backup_name(schedule.metadata.name, tick),
        next_backup_time=following,
    )


def validate_backup_schedule(schedule: BackupSchedule) -> None:
    """Raise InvalidSpecError naming the first field that makes this schedule unable to ever work."""
    validate_meta(schedule.metadata)
    name = schedule.metadata.name
    if len(name) > MAX_SCHEDULE_NAME:
        raise InvalidSpecError(
            "metadata.name",
            f"{len(name)} characters is too long for a BackupSchedule: its Backups carry the name in the "
            f"label {LABEL_SCHEDULE}, whose values Kubernetes limits to {MAX_SCHEDULE_NAME} characters; "
            f"use a name of at most {MAX_SCHEDULE_NAME}",
        )
    parse_schedule(schedule.spec.schedule)
    if schedule.spec.max_reserved_time is not None:
        parse_positive_duration(schedule.spec.max_reserved_time, "spec.maxReservedTime")
    validate_backup_spec(schedule.spec.backup_template, "spec.backupTemplate")


__all__ = [
    "Action",
    "Schedule",
    "ScheduleDecision",
    "ScheduleState",
    "decide",
    "parse_schedule",
    "validate_backup_schedule",
]
