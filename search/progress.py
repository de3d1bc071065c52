"""Progress on the terminal: an overall bar over trials and a bar for the running trial's epochs."""

from __future__ import annotations

from optuna.trial import FrozenTrial
from tqdm import tqdm


class TrialProgress:
    """Two tqdm bars (rate and ETA): finished trials of the study, epochs of the current trial."""

    def __init__(self, target: int, done: int) -> None:
        self.overall = tqdm(total=target, initial=min(done, target), desc="trials", unit="trial",
                            position=0, dynamic_ncols=True)
        self.current: tqdm | None = None

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
        acc, lat = trial.user_attrs.get("accuracy"), trial.user_attrs.get("latency_ms")
        if acc is not None and lat is not None:
            self.overall.set_postfix_str(f"last: #{trial.number} acc {acc:.3f} lat {lat:.1f} ms")

    def set_complete(self, complete: int) -> None:
        """Move the overall bar to ``complete`` finished trials."""
        self.overall.update(min(complete, self.overall.total) - self.overall.n)

    def note(self, text: str) -> None:
        """Print a line above the bars."""
        self.overall.write(text)

    def close(self) -> None:
        """Close both bars."""
        if self.current is not None:
            self.current.close()
        self.overall.close()
