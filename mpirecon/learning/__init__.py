"""Shared infrastructure of learned reconstruction methods (imports torch; ``import mpirecon`` does not).

* :mod:`.weights` — the safe weights file format (save/load, :class:`~.weights.WeightsError`);
* :mod:`.data` — simulated training pairs: signals b = A c + n and noisy images, from the phantom prior;
* :mod:`.loop` — the training loop (Adam + cosine schedule, best-on-validation saving,
  checkpoint/resume, wall-time budget, DDP under torchrun, progress).
"""
