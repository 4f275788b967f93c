"""Training / evaluation data b = A c + n (DERnet paper, eq. (1)), generated on the fly.

Samples are produced in seeded chunks (chunk i uses ``SeedSequence([seed, i])``), so any
index is reproducible, random access costs at most one chunk, and no file is needed.
SNR per sample is drawn uniformly from ``snr_range`` (definition in :mod:`.noise`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from mpirecon.simulation.noise import add_noise
from mpirecon.simulation.phantoms import TRAINING_FAMILIES, mixture

#: default training prior: digits plus every procedural family (not the hold-out ones)
DEFAULT_FAMILIES = TRAINING_FAMILIES


@dataclass(frozen=True)
class SignalRecipe:
    """What a data set holds: phantom families, SNR range (dB), size and seed."""

    num_samples: int
    snr_range: tuple[float, float] = (20.0, 40.0)
    families: tuple[str, ...] = DEFAULT_FAMILIES
    seed: int = 0
    chunk_size: int = 2048

    def as_dict(self) -> dict:
        return {"num_samples": self.num_samples, "snr_range": list(self.snr_range),
                "families": list(self.families), "seed": self.seed, "chunk_size": self.chunk_size}


def generate_chunk(matrix: np.ndarray, image_shape: Sequence[int], recipe: SignalRecipe,
                   chunk: int, labels: bool = False) -> tuple:
    """Chunk ``chunk`` of the data set: signals (n, R) complex128, images (n, Ny, Nx), SNR (n,)
    (and with ``labels`` the phantom family of each sample (n,), the same samples)."""
    start = chunk * recipe.chunk_size
    n = min(recipe.chunk_size, recipe.num_samples - start)
    if n <= 0:
        raise IndexError(f"chunk {chunk} is beyond {recipe.num_samples} samples")
    rng = np.random.default_rng(np.random.SeedSequence([recipe.seed, chunk]))
    images, families = mixture(n, image_shape, recipe.families, rng, labels=True)
    clean = images.reshape(n, -1) @ matrix.T
    snr = rng.uniform(recipe.snr_range[0], recipe.snr_range[1], n)
    out = (add_noise(clean, snr, rng), images, snr)
    return out + (families,) if labels else out


def generate_signals(matrix: np.ndarray, image_shape: Sequence[int], recipe: SignalRecipe):
    """The whole data set in memory: signals (N, R) complex64, images (N, Ny, Nx) float32, SNR (N,)."""
    n_chunks = -(-recipe.num_samples // recipe.chunk_size)
    sig, img, snr = zip(*(generate_chunk(matrix, image_shape, recipe, i) for i in range(n_chunks)))
    return (np.concatenate(sig).astype(np.complex64), np.concatenate(img).astype(np.float32),
            np.concatenate(snr))


def write_hdf5_shard(path, matrix, image_shape, recipe: SignalRecipe) -> None:
    """Cache a data set to one HDF5 file (datasets ``signals``, ``images``, ``snr``; recipe as
    attributes), written atomically. Reading it back with h5py gives the same arrays."""
    import json

    from mdf_io._h5 import atomic_h5

    sig, img, snr = generate_signals(matrix, image_shape, recipe)
    with atomic_h5(path, overwrite=False) as f:
        f.create_dataset("signals", data=sig, chunks=True)
        f.create_dataset("images", data=img, chunks=True)
        f.create_dataset("snr", data=snr)
        f.attrs["recipe"] = json.dumps(recipe.as_dict())


def torch_dataset(matrix: np.ndarray, image_shape: Sequence[int], recipe: SignalRecipe):
    """A ``torch.utils.data.Dataset`` returning (signal (2, R) float32 [re, im], image (1, Ny, Nx)).

    Items are generated chunk-wise on first access (reproducible by seed); imports torch.
    """
    import torch
    from torch.utils.data import Dataset

    class SimulatedSignals(Dataset):
        def __init__(self):
            self._cache: Optional[tuple[int, np.ndarray, np.ndarray]] = None

        def __len__(self):
            return recipe.num_samples

        def __getitem__(self, index):
            if index < 0:
                index += recipe.num_samples
            if not 0 <= index < recipe.num_samples:
                raise IndexError(index)
            chunk, offset = divmod(index, recipe.chunk_size)
            if self._cache is None or self._cache[0] != chunk:
                sig, img, _ = generate_chunk(matrix, image_shape, recipe, chunk)
                self._cache = (chunk, sig, img)
            _, sig, img = self._cache
            s = sig[offset]
            x = torch.from_numpy(np.stack([s.real, s.imag]).astype(np.float32))
            return x, torch.from_numpy(img[offset][None].astype(np.float32))

    return SimulatedSignals()
