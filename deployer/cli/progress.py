"""How a long step is shown while it runs (adapters/progress.py reports it):

- a build's own lines: folded on a terminal (the last few under a title, gone once it ends,
  all of them printed if it fails), every line on a pipe (a CI log);
- a transfer's bytes (an image streamed, pushed or pulled; a dump fetched): a bar with the
  bytes and the rate on a terminal, gone once it ends; on a pipe, a line every PLAIN_EVERY
  seconds.

Nothing with -q. rich draws the terminal views and honours NO_COLOR; every line is masked."""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from deployer.core.masking import mask

FOLDED = 8  # lines shown under the title on a terminal
KEPT = 5000  # lines of a folded build kept, to print them all if it fails
PLAIN_EVERY = 5.0  # seconds between a transfer's lines on a pipe


@contextmanager
def build_log(title: str, *, quiet: bool = False) -> Iterator[Callable[[str], None]]:
    if quiet:
        yield lambda line: None
    elif sys.stderr.isatty():
        with _folded(title) as show:
            yield show
    else:
        yield lambda line: print(f"  {title} | {mask(line)}", file=sys.stderr, flush=True)


@contextmanager
def _folded(title: str) -> Iterator[Callable[[str], None]]:
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    console = Console(stderr=True)
    tail: deque[str] = deque(maxlen=FOLDED)
    whole: deque[str] = deque(maxlen=KEPT)  # printed in full if the build fails

    def view() -> Text:
        text = Text(f"  building {title}", style="bold")
        for line in tail:
            text.append(f"\n    {line}", style="dim")
        text.no_wrap, text.overflow = True, "ellipsis"
        return text

    with Live(view(), console=console, transient=True, refresh_per_second=8) as live:

        def show(line: str) -> None:
            tail.append(mask(line))
            whole.append(tail[-1])
            live.update(view())

        try:
            yield show
        except BaseException:
            live.stop()
            for line in whole:
                print(f"  {title} | {line}", file=sys.stderr)
            raise


@contextmanager
def transfer(title: str, *, quiet: bool = False) -> Iterator[Callable[[int, int | None], None]]:
    if quiet:
        yield lambda done, total: None
    elif sys.stderr.isatty():
        with _bar(title) as update:
            yield update
    else:
        started, said = time.monotonic(), [time.monotonic()]

        def plain(done: int, total: int | None) -> None:
            now = time.monotonic()
            if now - said[0] >= PLAIN_EVERY:
                said[0] = now
                rate = done / max(now - started, 1e-6)
                of = f" of {megabytes(total)}" if total else ""
                print(f"  {mask(title)}: {megabytes(done)}{of}, {megabytes(rate)}/s", file=sys.stderr, flush=True)

        yield plain


def megabytes(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


@contextmanager
def _bar(title: str) -> Iterator[Callable[[int, int | None], None]]:
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    columns = (TextColumn("  {task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(mask(title), total=None)

        def update(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        yield update
