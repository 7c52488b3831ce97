"""The one vocabulary of delivery states: the words `feedsync status`, the status page, the
reports and the README use, each with what it means and what to do next.

A delivery's state is derived, never stored: from its record (parsing, failed verification),
the allow-list (ignored), and its report's ``status`` (the run's own word, kept in the report
JSON as an interface). The README's table "Delivery states" is this table; a unit test holds
them together.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeliveryState:
    name: str  # the word everywhere a person reads it
    meaning: str
    next_step: str  # {key} is the delivery's key
    severity: str  # "bad": needs a person, "warn": will move on its own, "": nothing to do


PARSING = DeliveryState(
    "parsing", "data files are arriving and being parsed; Adobe's manifest has not closed the "
    "delivery yet", "nothing: it is verified when the manifest arrives (a day without one after "
    "FeedLateHours raises FeedLateAlarm)", "warn")  # fmt: skip
FAILED_VERIFICATION = DeliveryState(
    "failed verification", "the delivery does not match its manifest (a digest, a size, a "
    "missing file): nothing of it is enriched", "wait for Adobe to deliver the day again, ask for "
    "it (`feedsync feeds resend {key}`), or drop it (`feedsync forget {key}`)", "bad")  # fmt: skip
IGNORED = DeliveryState(
    "ignored", "its report suite is not in REPORT_SUITES (ReportSuites), so no run takes it",
    "add the suite to ReportSuites, or check the spelling of the ones there", "bad")  # fmt: skip
WAITING_FOR_RUN = DeliveryState(
    "waiting for the daily run", "verified, not enriched yet",
    "nothing: the daily run takes it at ScheduleHour; now: `feedsync run-daily --delivery "
    "{key}`", "warn")  # fmt: skip
ENRICHING = DeliveryState(
    "enriching", "a run is walking it; the next invocation continues where it stopped",
    "nothing: it continues on its own", "warn")  # fmt: skip
INTERRUPTED = DeliveryState(
    "interrupted", "a run was stopped (Ctrl-C) before it finished; nothing was lost",
    "run it again: `feedsync run-daily --delivery {key}` resumes where it stopped",
    "warn")  # fmt: skip
WAITING_FOR_ADOBE = DeliveryState(
    "waiting for Adobe", "files were sent; Adobe has not given its verdict on all of them",
    "nothing: every run asks Adobe again (a job processing beyond AdobeStuckHours raises "
    "UploadsStuckAlarm)", "warn")  # fmt: skip
AWAITING_RESEND = DeliveryState(
    "awaiting re-send", "Adobe failed files: their visitors are sent again by the next run",
    "nothing: the next run re-sends them (at most UploadMaxAttempts times)", "warn")  # fmt: skip
WAITING_FOR_QUOTA = DeliveryState(
    "waiting for quota", "the CRM's daily API quota is used up (Marketo 607)",
    "nothing: the next run after Marketo's quota resets continues", "warn")  # fmt: skip
WAITING_FOR_CRM = DeliveryState(
    "waiting for the CRM", "the CRM copy (mirror or export) is older than the day: a miss "
    "would not be final yet", "refresh the export (CrmFileKey), or let the mirror sync",
    "warn")  # fmt: skip
NOT_CONFIGURED = DeliveryState(
    "not configured", "a setting the run needs is missing or wrong", "fix the setting the "
    "error names (`feedsync check`), then run again", "bad")  # fmt: skip
RUN_FAILED = DeliveryState(
    "run failed", "the last run of this delivery stopped on an error; what it did is kept",
    "fix what the error names; the next run resumes where it stopped", "bad")  # fmt: skip
GIVEN_UP = DeliveryState(
    "given up", "done, but Adobe failed some visitors every time (UploadMaxAttempts)",
    "fix the cause (the report lists Adobe's reasons), then `feedsync retry {key} --given-up`",
    "bad")  # fmt: skip
ENRICHED = DeliveryState(
    "enriched", "every pending visitor was handled and Adobe decided on every file sent",
    "nothing", "")  # fmt: skip

# the order a person reads them in: what needs them first
STATES = (FAILED_VERIFICATION, RUN_FAILED, NOT_CONFIGURED, IGNORED, GIVEN_UP, INTERRUPTED,
          WAITING_FOR_CRM, AWAITING_RESEND, WAITING_FOR_QUOTA, WAITING_FOR_ADOBE, ENRICHING,
          PARSING, WAITING_FOR_RUN, ENRICHED)  # fmt: skip

# a report's ``status`` (the run's word) -> the state
OF_REPORT = {
    "complete": ENRICHED,
    "given_up": GIVEN_UP,
    "in_progress": ENRICHING,
    "busy": ENRICHING,
    "sharded": ENRICHING,
    "interrupted": INTERRUPTED,
    "waiting": WAITING_FOR_ADOBE,
    "awaiting_resend": AWAITING_RESEND,
    "quota_exhausted": WAITING_FOR_QUOTA,
    "waiting_for_crm": WAITING_FOR_CRM,
    "not_configured": NOT_CONFIGURED,
    "failed": RUN_FAILED,
}


def of_report(status: str, awaiting_verdict: int = 0) -> DeliveryState:
    """The state a report's status means (an unknown word: the run failed, never 'done'). A
    walk that is done while files still await Adobe's verdict is waiting for Adobe: "uploaded"
    is final only when Adobe says so."""
    state = OF_REPORT.get(status, RUN_FAILED)
    return WAITING_FOR_ADOBE if state is ENRICHED and awaiting_verdict else state


def of_report_json(report: dict[str, object]) -> DeliveryState:
    """The state of a delivery's report (reports/<key>.json)."""
    adobe = report.get("adobe")
    waiting = adobe.get("visitors_awaiting_verdict", 0) if isinstance(adobe, dict) else 0
    return of_report(str(report.get("status")), int(waiting or 0))


def named(name: str) -> DeliveryState:
    """The state a status line starts with (``"run failed: ..."`` -> RUN_FAILED)."""
    return next((s for s in STATES if name == s.name or name.startswith(s.name + ":")), RUN_FAILED)


def rank(name: str) -> int:
    return STATES.index(named(name))


def readme_table() -> str:
    """The README's "Delivery states" table, as it must read."""
    rows = ["| state | means | what to do |", "| --- | --- | --- |"]
    rows += [f"| `{s.name}` | {s.meaning} | {s.next_step.replace('{key}', 'KEY')} |"
             for s in STATES]  # fmt: skip
    return "\n".join(rows)
