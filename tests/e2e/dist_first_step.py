"""Test helper, run as a script (one process, or each rank under mlx.launch): the first step's
token-summed loss, target count and gradient, summed over the ranks as the trainer sums them,
saved by rank 0 to OUT.

    python tests/dist_first_step.py RUN_DIR OUT [BACKEND]
"""

from __future__ import annotations

import sys
from pathlib import Path

import mlx.core as mx
from mlx.utils import tree_flatten

from farensed.core import logs
from farensed.core.paths import Home
from farensed.worker import distributed
from farensed.worker.recipe import Recipe


def main(run_dir: Path, out: Path, backend: str | None) -> None:
    logs.configure(console=False)
    run = Recipe(run_dir, Home(run_dir.parent), logs.get(), dist=distributed.init(backend))
    run.setup()
    run.resume()
    tr, dist = run.trainer, run.dist
    idx = tr.step_examples()
    mine = dist.share(idx, tr._lengths)
    sizes = run.planner.split(mine, tr.progress.step + 1)
    loss, ntoks, grad = dist.step_sum(lambda: tr.gradient(mine, sizes), run.model.trainable_parameters(), False)
    if dist.is_root:
        mx.save_safetensors(str(out), {**dict(tree_flatten(grad)), "__loss": loss, "__ntoks": ntoks,
                                       "__examples": mx.array(len(idx))})


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None)
