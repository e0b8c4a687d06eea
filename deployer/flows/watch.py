"""The watch after a switch (`release`, `promote`, `deployer watch`): the new live release
is judged on the edge's metrics for [watch] window; a breach switches back to the warm
standby at once, puts the colour's previous release back, records `auto-rollback` with the
figures, notifies, and fails the command (exit 1).

The rules are in core/verdict.py (the verdict, the baseline, the limits) and core/watch.py
(the marker, a tick). In mode "relative", the first tick measures the previous release's
baseline over the minute before the switch and keeps it in the marker. The watch holds no lock:
a manual `deployer switch` is never blocked by it (the watch then stops, without a
verdict), and the rollback's switch takes the lock like any switch. A release refuses to
start while a live watch runs; a watch whose process is gone is taken over by `deployer
watch` (its beat is old), or cleared by the next release.
"""

from __future__ import annotations

import os
import time
from typing import Any

from deployer.adapters.polling import until
from deployer.core import probe as probe_rule
from deployer.core import scripts
from deployer.core.durations import seconds_text
from deployer.core.state import EdgeState, Record
from deployer.core.steps import Step
from deployer.core.verdict import Judgement, Rules, baseline, figures, judge, limits
from deployer.core.watch import CHECK_FAILURES, SPAN, TICK, Marker, metrics_query, parse_tick, tick_script
from deployer.errors import EdgeError, EngineError, LockError
from deployer.flows import notify
from deployer.flows.context import Context, who
from deployer.flows.rollback import Verdict, clear, clock, record, roll_back

SAY_EVERY = 10.0  # seconds between progress lines
TICK_TRIES = 5  # failed reads of a tick in a row before the watch gives up (8 s)


def arm(
    ctx: Context,
    *,
    colour: str,
    release_id: str,
    version: str,
    previous: str,
    previous_version: str,
    standby: Record | None,
    window: float | None = None,
) -> Marker | None:
    """Write the watch's marker for a release about to go live, while its release still holds
    the lock: the switch frees the lock, and a next release must find the marker from that
    moment on. None when there is no watch (window 0, or nothing to switch back to)."""
    seconds = ctx.config.watch.window if window is None else window
    if seconds <= 0:
        return None
    if not previous:
        ctx.say("watch: skipped (no previous live colour to switch back to)")
        return None
    now = clock(ctx)
    holder = f"{who()} pid {os.getpid()}"
    marker = Marker(
        colour, release_id, version, previous, previous_version, now, now + round(seconds), now, holder, standby
    )
    ctx.edge.run(scripts.write_state("watch", marker.render()), step=Step.SWITCH)
    return marker


def disarm(ctx: Context, marker: Marker | None) -> None:
    """The release did not go live after all: its marker goes (never raises)."""
    if marker is not None:
        try:
            clear(ctx, marker)
        except Exception:
            pass


def after_switch(ctx: Context, marker: Marker | None) -> Verdict | None:
    """Watch a release that has just gone live (its marker armed before the switch); None
    when there is no watch. Raises HealthError after an automatic rollback."""
    if marker is None:
        return None
    seconds, colour, version = marker.deadline - marker.started, marker.colour, marker.version
    previous, previous_version = marker.previous, marker.previous_version
    ctx.say(f"watch: {version} on {colour} for {seconds_text(seconds)}, {_plan(rules(ctx))}; {previous} "
            f"({previous_version}) stays warm for the rollback; `deployer watch` follows it")  # fmt: skip
    return _run(ctx, marker, own=True)


def rules(ctx: Context) -> Rules:
    """[watch]'s thresholds, as the verdict takes them."""
    from dataclasses import fields

    return Rules(**{f.name: getattr(ctx.config.watch, f.name) for f in fields(Rules)})


def _plan(r: Rules) -> str:
    absolute = f"5xx ≤ {r.max_error_rate:.1%}, p99 ≤ {seconds_text(r.max_p99)}"
    judged = (
        f"against the previous release's figures of the minute before the switch (5xx + {r.error_margin:.1%}, "
        f"p99 × {r.p99_factor:g}, at least {seconds_text(r.p99_floor)}; without them {absolute})"
        if r.mode == "relative"
        else absolute
    )
    clients = f"; a breach needs bad requests from {r.min_clients} client addresses" if r.min_clients > 1 else ""
    return f"{judged}; a verdict needs {r.min_requests} live requests{clients}"


def attach(ctx: Context) -> Verdict | None:
    """`deployer watch`: follow the running watch to its verdict; take it over when the
    process that watched is gone. None when no watch runs."""
    ctx.edge.require()
    marker = Marker.parse(ctx.edge.state(step=Step.WATCH).watch)
    if marker is None:
        last = _last(ctx)
        if last:
            what = f"{last.get('action')} of {last.get('version')} on {last.get('colour')}: {last.get('outcome')}"
            ctx.say(f"no watch is running; the last one ({last.get('time')}): {what}")
        else:
            ctx.say("no watch is running")
        return None
    now = clock(ctx)
    if not marker.alive(now) and not marker.left(now):
        clear(ctx, marker)
        return Verdict("no-verdict", f"the watch of {marker.version} ended without its process (killed): no verdict")
    ctx.say(f"watch: {marker.version} on {marker.colour}, {marker.left(now)}s left, watched by {marker.holder}")
    return _run(ctx, marker, own=False)


def guard(ctx: Context, state: EdgeState) -> None:
    """Before a release: refuse while a live watch runs; clear the marker a killed one left."""
    marker = Marker.parse(state.watch)
    if marker is None:
        return
    now = clock(ctx)
    if marker.alive(now):
        raise LockError(
            f"{marker.version} on {marker.colour} is being watched ({marker.left(now)}s left) by {marker.holder}: "
            "wait for its verdict (`deployer watch` follows it) before the next release",
            step=Step.LOCK,
        )
    clear(ctx, marker)
    ctx.say(f"the watch of {marker.version} was left unfinished by its process: no verdict; marker removed")


# -- the loop --------------------------------------------------------------------------------
def _run(ctx: Context, marker: Marker, *, own: bool) -> Verdict:
    w, judged = ctx.config.watch, rules(ctx)
    check = probe_rule.Probe(probe_rule.LIVE + w.check, marker.colour, marker.release) if w.check else None
    failed_checks, said, rolling_back = 0, 0.0, False
    limit = int((marker.deadline - marker.started) / TICK) + 100  # bounded, whatever the clocks do
    try:
        for _ in range(limit):
            began = time.monotonic()
            tick = _tick(ctx, marker, own=own, check=check)
            mine = Marker.parse(tick.state.watch)
            if mine is None or mine.release != marker.release:
                return _ended(ctx, marker)
            if not own and not mine.alive(tick.now) and mine.left(tick.now):
                ctx.say(f"watch: the process watching {marker.version} is gone ({mine.holder}): taking the watch over")
                if judged.mode == "relative" and mine.baseline is None:
                    ctx.say("watch: it measured no baseline: judged on the absolute thresholds")
                marker, own = _take_over(ctx, mine, tick.now), True
            if own and not tick.state.serves(marker.colour, marker.release):
                clear(ctx, marker)
                text = f"live was switched away from {marker.version} by another command: the watch stopped, no verdict"
                return record(ctx, marker, Verdict("stopped", text))
            if own and judged.mode == "relative" and marker.baseline is None and tick.now - marker.started < SPAN:
                marker = _measure(ctx, marker, tick, judged)
            seconds = min(SPAN, max(1, tick.now - marker.started))
            fig = figures(tick.metrics, marker.colour, marker.release, seconds)
            verdict = judge(fig, judged, limits(judged, (marker if own else mine).baseline))
            problems = probe_rule.failures([check], tick.check) if check else []
            failed_checks = failed_checks + 1 if problems else 0
            if own and failed_checks >= CHECK_FAILURES:
                why = f"the check {w.check} failed {failed_checks} times in a row: {'; '.join(problems)}"
                verdict = Judgement("breach", (why, *verdict.reasons), fig, verdict.limits, verdict.left_out)
            if own and verdict.verdict == "breach":
                rolling_back = True
                roll_back(ctx, marker, verdict, f"the last {seconds_text(seconds)}")
            if time.monotonic() - said >= SAY_EVERY:
                said = time.monotonic()
                state = {"ok": "within the limits", "too-few": "too few requests to judge yet"}.get(
                    verdict.verdict, "over a limit"
                )
                ctx.say(f"watch: {marker.left(tick.now)}s left: {verdict.text()}: {state} ({verdict.limits.text()})")
            if tick.now >= marker.deadline:
                break
            time.sleep(max(0.0, TICK - (time.monotonic() - began)))
        return _final(ctx, marker) if own else _ended(ctx, marker, wait=True)
    except KeyboardInterrupt:
        if own:
            try:  # whatever fails here, the cancel is what the command reports
                clear(ctx, marker)
                record(ctx, marker, Verdict("cancelled", "the watch was cancelled"))
            except Exception:
                pass
            if rolling_back:
                ctx.say(
                    f"watch cancelled during the switch back from {marker.version}: `deployer status` shows which "
                    f"colour is live; `deployer switch --to {marker.previous}` finishes the rollback"
                )
            else:
                ctx.say(f"watch cancelled: {marker.version} stays live; {marker.previous} stays the warm standby")
        raise


def _tick(ctx: Context, marker: Marker, *, own: bool, check: Any) -> Any:
    """One tick read from the edge. A failed read (an engine call that failed for a moment)
    is tried again: TICK_TRIES in a row must fail before the watch gives up."""
    from requests.exceptions import RequestException
    from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_fixed

    script = tick_script(
        marker, own=own, window=SPAN, top=rules(ctx).top, check=check, timeout=ctx.config.timeouts.request_timeout
    )
    for attempt in Retrying(
        stop=stop_after_attempt(TICK_TRIES),
        wait=wait_fixed(TICK),
        retry=retry_if_exception_type((EngineError, EdgeError, RequestException)),
        before_sleep=lambda state: ctx.say(
            f"watch: reading the edge failed ({state.outcome.exception()}); trying again in {TICK:.0f}s"
        ),
        reraise=True,
    ):
        with attempt:
            result = ctx.edge.run(script, step=Step.WATCH)
            tick = parse_tick(result.stdout)
            if not result.ok or not tick.now:  # cut short (the edge stopped under it): not a reading
                raise EdgeError(f"the edge's answer was cut short (exit {result.exit_code})", step=Step.WATCH)
            return tick
    raise AssertionError("unreachable")  # reraise=True: the last failure is raised above


def _final(ctx: Context, marker: Marker) -> Verdict:
    """The end of the window: all of it is judged."""
    judged = rules(ctx)
    query = metrics_query(None, judged.top)
    text = ctx.edge.run(f"curl -s --max-time 5 '{probe_rule.PREVIEW}/_deployer/metrics{query}'", step=Step.WATCH).stdout
    fig = figures(text, marker.colour, marker.release, marker.deadline - marker.started)
    verdict = judge(fig, judged, limits(judged, marker.baseline))
    if verdict.verdict == "breach":
        roll_back(ctx, marker, verdict, "the whole window")
    found = {**verdict.record(), **({"baseline": marker.baseline.record()} if marker.baseline else {})}
    if verdict.verdict == "too-few":
        event, result = (
            "watch_no_verdict",
            Verdict(
                "no-verdict",
                f"watch: NO VERDICT for {marker.version}: {verdict.reasons[0]} in {seconds_text(fig.seconds)}. It was "
                f"neither passed nor failed; it stays live, and {marker.previous} ({marker.previous_version}) stays "
                f"the warm standby for `deployer switch --to {marker.previous}`",
                found,
            ),
        )
    else:
        passed = f"watch passed: {marker.version}: {verdict.text()} ({verdict.limits.text()})"
        event, result = "watch_passed", Verdict("passed", passed, found)
    record(ctx, marker, result)
    clear(ctx, marker)
    ctx.say(result.text)
    notify.send(ctx, event, result.text, version=marker.version, colour=marker.colour, **found)
    return result


def _measure(ctx: Context, marker: Marker, tick: Any, judged: Rules) -> Marker:
    """The previous live release's figures over the minute before the switch, as the first
    tick after it reads them, kept in the marker (a watch taken over judges against them)."""
    from dataclasses import replace

    previous = tick.state.records.get(marker.previous)
    release = previous.release if previous else None
    base = baseline(figures(tick.metrics, marker.previous, release, SPAN), release or "-")
    mine = replace(marker, baseline=base, beat=tick.now)
    try:
        ctx.edge.run(scripts.write_state("watch", mine.render()), step=Step.WATCH)
    except (EngineError, EdgeError) as exc:  # judged against it all the same; only a take-over would lack it
        ctx.say(f"watch: the baseline could not be kept in the watch's marker ({exc})")
    lim, what = limits(judged, base), f"{marker.previous} ({marker.previous_version})"
    if lim.relative:
        ctx.say(f"watch: baseline of {what} over the minute before the switch: {base.text()}; limits {lim.text()}")
    else:
        ctx.say(
            f"watch: no baseline: {what} had {base.requests} live requests in the minute before the switch, fewer "
            f"than watch.min_requests = {judged.min_requests}: judged on the absolute thresholds ({lim.text()})"
        )
    return mine


# -- the marker and the history -----------------------------------------------------------------
def _take_over(ctx: Context, marker: Marker, now: int) -> Marker:
    from dataclasses import replace

    mine = replace(marker, holder=f"{who()} pid {os.getpid()} (took over)", beat=now)
    ctx.edge.run(scripts.write_state("watch", mine.render()), step=Step.WATCH)
    return mine


def _last(ctx: Context, release: str = "") -> dict[str, Any] | None:
    for entry in reversed(ctx.edge.history(50)):
        if entry.get("action") in ("watch", "auto-rollback") and (not release or entry.get("release") == release):
            return entry
    return None


def _ended(ctx: Context, marker: Marker, *, wait: bool = False) -> Verdict:
    """The watch is over: its verdict, as the watching process recorded it (`wait`: for the
    marker to go first, bounded, while that process judges the end of the window)."""

    def gone() -> bool:
        mine = Marker.parse(ctx.edge.state(step=Step.WATCH).watch)
        return mine is None or mine.release != marker.release

    if wait:  # the watching process removes the marker when it has judged: the route state is read again
        until(gone, seconds=120, every=1)
    entry = _last(ctx, marker.release)
    if entry is None:
        return Verdict("stopped", f"the watch of {marker.version} ended without a recorded verdict")
    outcome = entry.get("outcome", "")
    if entry.get("action") == "auto-rollback":
        outcome = "rolled-back" if outcome in ("ok", "rolled-back") else "failed"
    return Verdict(
        outcome, str(entry.get("reason", "")), {k: entry.get(k) for k in ("figures", "reasons") if k in entry}
    )
