"""Progress of a pipeline run for people: a rich progress bar over the stages and one line per stage.

It is a ``StageListener``: the runner tells it every change of a stage's record as it happens.
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from pipeline.runner import RunRecord, StageRecord

MARKS = {"succeeded": "[green]done[/green]", "reused": "[cyan]reused[/cyan]", "failed": "[red]FAILED[/red]"}


class StageProgress:
    """Draws the run's progress on ``console``; use it as a context manager around the run."""

    def __init__(self, console: Console, title: str) -> None:
        self.console = console
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} stages"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.task = self.progress.add_task(title, total=5)
        self.title = title

    def __enter__(self) -> StageProgress:
        self.progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.progress.stop()

    def stage_changed(self, run: RunRecord, record: StageRecord) -> None:
        self.progress.update(self.task, total=len(run.stages))
        if record.status == "running":
            attempt = f" (attempt {record.attempts})" if record.attempts > 1 else ""
            self.progress.update(self.task, description=f"{self.title}: {record.stage}{attempt}")
            return
        mark = MARKS.get(record.status)
        if mark is None:
            return
        detail = f": {escape(record.error)}" if record.error else ""
        self.progress.console.print(f"  {record.stage:<9} {mark} {record.seconds:7.2f}s{detail}", highlight=False)
        self.progress.advance(self.task)
