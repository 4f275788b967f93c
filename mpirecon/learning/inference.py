"""Running a trained network on many frames: batches of complex spectra to numpy images."""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch


def predict_in_batches(predict: Callable[[torch.Tensor], torch.Tensor], spectra: np.ndarray, batch_size: int,
                       precision: str, device, out_dtype=np.float64) -> np.ndarray:
    """Images (F, P) of complex ``spectra`` (F, R): ``predict`` on batches of ``batch_size`` frames
    as complex tensors of ``precision`` ("float32" -> complex64, "float64" -> complex128) on
    ``device``, under ``torch.inference_mode``; the result in ``out_dtype``."""
    ctype = torch.complex64 if precision == "float32" else torch.complex128
    out = []
    with torch.inference_mode():
        for i in range(0, spectra.shape[0], batch_size):
            b = torch.as_tensor(np.ascontiguousarray(spectra[i:i + batch_size]), dtype=ctype, device=device)
            out.append(predict(b).cpu().numpy().astype(out_dtype, copy=False))
    return np.concatenate(out).reshape(spectra.shape[0], -1)
