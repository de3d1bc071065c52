"""Progress on the terminal: an overall bar over trials and bars for the running trials' epochs."""

from __future__ import annotations

from optuna.trial import FrozenTrial
from tqdm import tqdm

from .record import TrialRecord


class TrialProgress:
    """Two tqdm bars (rate and ETA): finished trials of the study, epochs of the current trial."""

    def __init__(self, target: int, done: int) -> None:
        self.overall = tqdm(total=target, initial=min(done, target), desc="trials", unit="trial",
                            position=0, dynamic_ncols=True)
        self.current: tqdm | None = None
        self.running: dict[int, tuple[tqdm, str]] = {}

    def epoch(self, epoch: int, epochs: int) -> None:
        """The running trial finished ``epoch`` of ``epochs`` proxy-training epochs."""
        if self.current is None:
            self.current = tqdm(total=epochs, desc="  proxy training", unit="epoch", position=1,
                                leave=False, dynamic_ncols=True)
        self.current.update(epoch - self.current.n)

    def finished(self, trial: FrozenTrial, complete: int) -> None:
        """A trial ended; ``complete`` trials of the study are finished."""
        if self.current is not None:
            self.current.close()
            self.current = None
        self.set_complete(complete)
        record = TrialRecord.from_trial(trial)
        acc, lat = record.accuracy, record.latency_ms
        if acc is not None and lat is not None:
            self.overall.set_postfix_str(f"last: #{trial.number} acc {acc:.3f} lat {lat:.1f} ms")

    def show_running(self, running: list[FrozenTrial]) -> None:
        """One bar per running trial of any worker, from what the trials record in the storage."""
        numbers = {t.number for t in running}
        for number in [n for n in self.running if n not in numbers]:
            self.running.pop(number)[0].close()
        for slot, trial in enumerate(sorted(running, key=lambda t: t.number)):
            record = TrialRecord.from_trial(trial)
            stage = record.stage or "starting"
            if trial.number not in self.running:
                bar = tqdm(total=1, unit="epoch", position=slot + 1, leave=False, dynamic_ncols=True)
                self.running[trial.number] = (bar, "")
            bar, shown = self.running[trial.number]
            if stage != shown:
                bar.reset(total=int(record.epochs or 1) if stage == "training" else 1)
                bar.set_description_str(f"  trial {trial.number} {stage}")
                self.running[trial.number] = (bar, stage)
            done = int(record.epochs_done or 0) if stage == "training" else 0
            if done > bar.n:
                bar.update(done - bar.n)

    def set_complete(self, complete: int) -> None:
        """Move the overall bar to ``complete`` finished trials."""
        self.overall.update(min(complete, self.overall.total) - self.overall.n)

    def note(self, text: str) -> None:
        """Print a line above the bars."""
        self.overall.write(text)

    def close(self) -> None:
        """Close every bar."""
        if self.current is not None:
            self.current.close()
        for bar, _ in self.running.values():
            bar.close()
        self.overall.close()
