"""The per-epoch metrics CSV in ``ckpt_save_dir``, rewritten atomically after every epoch."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from space.basics.atomic import write_atomic

COLUMNS = ("epoch", "step", "lr", "loss", "val_loss", "top1", "top5", "val_images", "train_images",
           "skipped_images", "train_seconds", "val_seconds", "images_per_second", "best_top1")
METRICS_NAME = "metrics.csv"


class MetricsLog:
    """Rows of ``metrics.csv``; on resume the rows after the resumed epoch are dropped."""

    def __init__(self, path: Path, keep_through_epoch: int) -> None:
        self.path = path
        self.rows: list[dict[str, str]] = []
        if keep_through_epoch > 0 and path.is_file():
            with path.open(newline="") as f:
                self.rows = [row for row in csv.DictReader(f) if int(row["epoch"]) <= keep_through_epoch]

    def add(self, row: dict[str, Any]) -> None:
        """Append one epoch and rewrite the file (temp file + rename)."""
        self.rows.append({c: _fmt(row.get(c)) for c in COLUMNS})
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(self.rows)
        write_atomic(self.path, buffer.getvalue())

    def last(self) -> "dict[str, str] | None":
        """The newest row, if any."""
        return self.rows[-1] if self.rows else None


def _fmt(value: Any) -> str:
    """A CSV cell: floats with 10 significant digits, None as empty."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.10g}"
    return str(value)
