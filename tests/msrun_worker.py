"""One msrun worker of the distributed test: train, then report this rank's shard and weights.

Usage (under msrun): msrun_worker.py DATA_DIR OUT_DIR
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mixnet.quiet import quiet_mindspore  # noqa: E402

quiet_mindspore()

from trainer import load_config, train  # noqa: E402
from trainer.data import TrainData, scan_split  # noqa: E402
from trainer.transforms import SkipCounter  # noqa: E402

TINY = ("stem8_head32_w1_d0.2_nc10,r1_k3_a1_p1_s2_e1_i8_o8_re,"
        "r1_k3.5_a1_p1_s2_e3_i8_o16_se0.25_sw_sesw")


def main(data_dir: str, out_dir: str) -> None:
    """Train one short data-parallel run, then write rank<r>.json with the shard's image hashes."""
    from mindspore.communication import get_group_size, get_rank
    recipe = Path(__file__).resolve().parents[1] / "configs" / "train" / "digits.yaml"
    cfg = load_config(recipe, {"data_dir": data_dir, "ckpt_save_dir": str(Path(out_dir) / "ckpt"), "genome": TINY,
                               "width": None, "distribute": True, "epoch_size": 2, "num_samples": 256,
                               "batch_size": 32, "num_parallel_workers": 1, "ema": True})
    result = train(cfg, progress=False)
    rank, world = get_rank(), get_group_size()
    plain = cfg.replace(scale=[1.0, 1.0], ratio=[1.0, 1.0])
    data = TrainData(plain, scan_split(data_dir, "train", "train_split"), 10, rank, world)
    hashes = [hashlib.sha1(image.tobytes()).hexdigest() for images, _ in data.batches(0, SkipCounter())
              for image in images]
    report = dict(asdict(result), rank=rank, world=world, shard=hashes,
                  metrics_csv=str(result.metrics_csv) if result.metrics_csv else None,
                  best_ckpt=str(result.best_ckpt) if result.best_ckpt else None)
    (Path(out_dir) / f"rank{rank}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
