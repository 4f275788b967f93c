"""Simulated training data for learned methods, drawn from the phantom prior (no measured data needed).

* :class:`SimulatedPairs` — spectra b = A c + n for a system matrix A and images c (signal -> image
  methods such as DERnet); clean signals are simulated once (or per epoch), noise is drawn per
  batch at an SNR recorded per sample; validation noise is fixed.
* :class:`DenoisingPairs` — images scaled to max 1 plus Gaussian noise (image denoisers, PP-MPI).

Both follow the protocol the training loop (:func:`mpirecon.learning.loop.fit`) expects:
``samples``, ``start_epoch(epoch)``, ``batch(idx, generator) -> (inputs, targets)`` and
``validation = (inputs, targets)``; tensors stay on the CPU.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from typing import Optional

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from mpirecon.simulation.datasets import DEFAULT_FAMILIES, SignalRecipe, generate_signals
from mpirecon.simulation.phantoms import mixture

from mpirecon.learning.augment import shifted


def system_scale(clean: np.ndarray, images: np.ndarray) -> float:
    """κ: median over samples of max|b| / max c — the unit-free scale of DERnet's eq. (10).

    clean: (N, M) complex signals; images: (N, ...) matching images.
    """
    bmax = np.abs(clean).max(axis=1)
    cmax = images.reshape(images.shape[0], -1).max(axis=1)
    ok = cmax > 0
    return float(np.median(bmax[ok] / cmax[ok]))


def noisy(clean: torch.Tensor, snr_db: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """``clean`` (B, M) complex plus circular complex Gaussian noise at ``snr_db`` (B,) dB,
    relative to each signal's mean power (drawn from ``gen``)."""
    power = clean.abs().pow(2).mean(dim=1, keepdim=True)
    sigma = torch.sqrt(power / 10 ** (snr_db[:, None] / 10))
    noise = torch.randn(clean.shape + (2,), generator=gen, dtype=torch.float32)
    return clean + (sigma / math.sqrt(2)) * torch.complex(noise[..., 0], noise[..., 1])


@dataclass(frozen=True)
class PairsRecipe:
    """Size, SNR range (dB), phantom families and seed of a :class:`SimulatedPairs` data set."""

    samples: int
    val_samples: int
    snr_min: float = 20.0
    snr_max: float = 40.0
    families: tuple[str, ...] = DEFAULT_FAMILIES
    seed: int = 0
    resample_phantoms: bool = False
    #: operator perturbation: signals come from (A + E) c + δ Σc with E, δ drawn per batch at this
    #: multiple of the calibration's own per-row noise (0: the exact matrix, the paper's set-up)
    operator_noise: float = 0.0
    #: share of the samples measured with other physics (per-row gains of :mod:`.augment`; 0: none)
    physics_augmentation: float = 0.0

    def train_recipe(self) -> SignalRecipe:
        """The training set's :class:`SignalRecipe` (recorded with the weights)."""
        return SignalRecipe(self.samples, (self.snr_min, self.snr_max), tuple(self.families), self.seed)

    def val_recipe(self) -> SignalRecipe:
        """The validation set's :class:`SignalRecipe` (its own seed, fixed noise)."""
        return SignalRecipe(self.val_samples, (self.snr_min, self.snr_max), tuple(self.families),
                            self.seed + 1_000_003)


class PairsTrainConfig(BaseModel):
    """The recipe fields every method trained on :class:`SimulatedPairs` shares (the training
    loop reads ``epochs``, ``batch_size``, ``lr``, ``seed``, ``max_minutes``, ``keep_checkpoint``);
    a method subclasses it, changing defaults and adding its architecture."""

    model_config = ConfigDict(extra="forbid")

    samples: int = Field(48000, ge=1, description="training phantoms")
    val_samples: int = Field(6000, ge=1, description="validation phantoms")
    epochs: int = Field(36, ge=1)
    batch_size: int = Field(128, ge=1)
    lr: float = Field(1e-3, gt=0, description="Adam learning rate (cosine decay to 2% of it)")
    snr_min: float = Field(20.0, description="lowest training SNR (dB)")
    snr_max: float = Field(40.0, description="highest training SNR (dB)")
    seed: int = 0
    device: str = "cpu"
    families: tuple[str, ...] = Field(DEFAULT_FAMILIES, description="phantom families of the training prior")
    max_minutes: Optional[float] = Field(55.0, description="stop before an epoch would end past this")
    resample_phantoms: bool = Field(False, description="draw a new phantom set every epoch (else: one fixed set)")
    operator_noise: float = Field(1.0, ge=0, description="train on (A + E) c + δΣc + n with E, δ at this multiple of "
                                                         "the calibration's per-row noise (/calibration/snr); 0: exact A "
                                                         "(the paper's set-up)")
    physics_augmentation: float = Field(0.0, ge=0, le=1, description="share of training signals measured with other "
                                                                      "physics than the calibration's: a random "
                                                                      "relaxation change, receive low-pass and delay, "
                                                                      "harmonic tilt per sample (mpirecon.learning."
                                                                      "augment); 0: none")
    num_threads: Optional[int] = None
    keep_checkpoint: bool = Field(False, description="keep OUTPUT.ckpt after a successful run")

    def pairs_recipe(self) -> "PairsRecipe":
        """The :class:`PairsRecipe` of these settings."""
        return PairsRecipe(self.samples, self.val_samples, self.snr_min, self.snr_max, tuple(self.families),
                           self.seed, self.resample_phantoms, self.operator_noise, self.physics_augmentation)

    def pairs(self, system_matrix) -> "SimulatedPairs":
        """The :class:`SimulatedPairs` of these settings for a (selected) system matrix, with its
        calibration row noise for the operator perturbation."""
        row_noise = (calibration_row_noise(system_matrix.matrix, system_matrix.snr) if self.operator_noise > 0
                     else None)
        return SimulatedPairs(system_matrix.matrix, system_matrix.image_shape, self.pairs_recipe(), row_noise=row_noise,
                              frequencies=system_matrix.frequencies)


def calibration_row_noise(matrix: np.ndarray, snr: np.ndarray) -> np.ndarray:
    """Per-row noise σ_r (R,) of a calibration: its row RMS over ``/calibration/snr`` (the MDF
    definition, signal RMS / noise std); 0 for rows without a finite positive SNR."""
    rms = np.sqrt(np.mean(np.abs(matrix) ** 2, axis=1))
    ok = np.isfinite(snr) & (snr > 0)
    return np.where(ok, rms / np.where(ok, snr, 1.0), 0.0)


#: largest M x P for which one operator perturbation E (M, P) is drawn per training batch
SHARED_PERTURBATION_ENTRIES = 2 ** 25

#: size of the per-row background offset δ relative to the per-entry calibration noise
BACKGROUND_OFFSET = 0.3


class SimulatedPairs:
    """Training pairs (spectra (B, M) complex64, images (B, Ny, Nx) float32) for a system matrix.

    ``matrix`` is the (M, Ny*Nx) complex selected system matrix, ``image_shape`` (Ny, Nx).
    ``kappa`` is :func:`system_scale` of the clean training set. With ``recipe.operator_noise``
    > 0, ``row_noise`` (M,) (:func:`calibration_row_noise`) sets the operator perturbation: the
    calibration is itself noisy, so the network should learn a regularised inverse rather than
    the exact inverse of one noisy matrix (validation uses one fixed perturbation).
    """

    def __init__(self, matrix: np.ndarray, image_shape, recipe: PairsRecipe, row_noise=None, frequencies=None):
        self.matrix, self.shape, self.recipe = matrix, tuple(image_shape), recipe
        if recipe.physics_augmentation > 0 and frequencies is None:
            raise ValueError("physics_augmentation > 0 needs the rows' frequencies")
        self.frequencies = None if frequencies is None else torch.from_numpy(np.asarray(frequencies, np.float64))
        self.clean, self.images = self.epoch_phantoms(0)
        snr = np.random.default_rng([recipe.seed, 7]).uniform(recipe.snr_min, recipe.snr_max, recipe.samples)
        self.snr = torch.from_numpy(snr.astype(np.float32))
        self.row_noise = None
        if recipe.operator_noise > 0:
            if row_noise is None:
                raise ValueError("operator_noise > 0 needs the calibration's row_noise")
            self.row_noise = torch.from_numpy(recipe.operator_noise * np.asarray(row_noise, np.float32))
        val_sig, val_img, val_snr = generate_signals(matrix, self.shape, recipe.val_recipe())
        val_sig = torch.from_numpy(val_sig)
        if self.row_noise is not None or recipe.physics_augmentation > 0:
            # one fixed perturbation, noise re-drawn at each sample's SNR
            g = torch.Generator().manual_seed(recipe.seed + 99)
            clean = self.perturbed(self._clean_of(val_img), torch.from_numpy(val_img), g)
            val_sig = noisy(clean, torch.from_numpy(np.asarray(val_snr, np.float32)), g)
        self.validation = (val_sig, torch.from_numpy(val_img))
        self.kappa = system_scale(self.clean.numpy(), self.images.numpy())

    def _clean_of(self, images: np.ndarray) -> torch.Tensor:
        """Noise-free signals (N, M) complex64 of images (N, Ny, Nx) with the exact matrix."""
        return torch.from_numpy((images.reshape(images.shape[0], -1) @ self.matrix.T).astype(np.complex64))

    def perturbed(self, clean: torch.Tensor, images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """``clean`` (B, M) with the recipe's physics augmentation (:func:`.augment.shifted`),
        plus ``E c + δ Σc`` for images (B, Ny, Nx): E (M, P) and δ (M,) circular complex Gaussian
        with per-row std σ_r and ``BACKGROUND_OFFSET`` σ_r, drawn from ``gen``: one E per batch, or for
        a calibration of more than :data:`SHARED_PERTURBATION_ENTRIES` entries (37^3) ``E c`` drawn per
        sample (each sample's distribution is the same; an (M, P) draw per batch would cost GBs)."""
        if self.recipe.physics_augmentation > 0:
            clean = shifted(clean, self.frequencies, gen, self.recipe.physics_augmentation)
        if self.row_noise is None:
            return clean
        m, p = self.matrix.shape
        c = images.reshape(images.shape[0], -1).to(torch.float32)
        if m * p <= SHARED_PERTURBATION_ENTRIES:
            e = torch.randn((m, p, 2), generator=gen) * (self.row_noise / math.sqrt(2))[:, None, None]
            ec = torch.complex(c @ e[..., 0].T, c @ e[..., 1].T)
        else:  # E c drawn per sample: row r ~ CN(0, σ_r² ||c||²), what any one E gives one image
            z = torch.randn((c.shape[0], m, 2), generator=gen)
            ec = torch.complex(z[..., 0], z[..., 1]) * (self.row_noise / math.sqrt(2))[None] * c.norm(dim=1, keepdim=True)
        d = torch.randn((m, 2), generator=gen) * (BACKGROUND_OFFSET * self.row_noise / math.sqrt(2))[:, None]
        return clean + ec + c.sum(1, keepdim=True) * torch.complex(d[:, 0], d[:, 1])

    @property
    def samples(self) -> int:
        """Training samples per epoch."""
        return self.recipe.samples

    def epoch_phantoms(self, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The noise-free training set of ``epoch`` (0: the set every epoch uses unless
        ``resample_phantoms``), seeded by recipe seed and epoch: clean signals (samples, M)
        complex64 and images (samples, Ny, Nx) float32."""
        r = self.recipe
        recipe = SignalRecipe(r.samples, (200.0, 200.0), tuple(r.families), r.seed + 10_000_019 * epoch)
        clean, images, _ = generate_signals(self.matrix, self.shape, recipe)
        return torch.from_numpy(clean), torch.from_numpy(images)

    def start_epoch(self, epoch: int) -> None:
        """Draw epoch ``epoch``'s phantom set if the recipe resamples phantoms."""
        if self.recipe.resample_phantoms and epoch > 0:
            self.clean, self.images = self.epoch_phantoms(epoch)

    def batch(self, idx: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Noisy spectra (B, M) and their images (B, Ny, Nx) for sample indices ``idx`` (one
        operator perturbation per batch when the recipe asks for it)."""
        clean = self.clean[idx]
        if self.row_noise is not None or self.recipe.physics_augmentation > 0:
            clean = self.perturbed(clean, self.images[idx], gen)
        return noisy(clean, self.snr[idx], gen), self.images[idx]

    def describe(self) -> dict:
        """JSON-ready description recorded with the weights."""
        return {"train_recipe": self.recipe.train_recipe().as_dict(), "val_recipe": self.recipe.val_recipe().as_dict(),
                "noise": "resampled every epoch", "operator_noise": self.recipe.operator_noise,
                "physics_augmentation": self.recipe.physics_augmentation}


class DenoisingPairs:
    """Noisy/clean image pairs (B, 1, Ny, Nx) float32 (volumes: (B, 1, Nz, Ny, Nx), from the 3D
    families) from the phantom prior, each image scaled to
    max 1, additive Gaussian noise of std ``noise_std`` drawn per batch (fixed for validation).

    With ``noise_range = (lo, hi)`` every image gets its own std, log-uniform in [lo, hi], and the
    inputs are (B, 2, Ny, Nx): the noisy image and a constant map of its std (a noise-aware
    denoiser's input, as DRUNet's)."""

    def __init__(self, image_shape, samples: int, val_samples: int, noise_std: float,
                 families, seed: int = 0, noise_range=None):
        self.noise_std = float(noise_std)
        self.noise_range = None if noise_range is None else (float(noise_range[0]), float(noise_range[1]))
        self.clean = _unit_max(mixture(samples, tuple(image_shape), families, np.random.default_rng(seed)))
        val = _unit_max(mixture(val_samples, tuple(image_shape), families, np.random.default_rng(seed + 1)))
        gval = torch.Generator().manual_seed(seed + 2)
        self.validation = (self._noisy(val, gval), val)

    @property
    def samples(self) -> int:
        """Training samples per epoch."""
        return self.clean.shape[0]

    def start_epoch(self, epoch: int) -> None:
        """Nothing changes between epochs (noise is drawn per batch)."""

    def batch(self, idx: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Network inputs (B, 1 or 2, Ny, Nx) and the clean images (B, 1, Ny, Nx)."""
        x = self.clean[idx]
        return self._noisy(x, gen), x

    def _noisy(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """x plus Gaussian noise at the fixed level, or at a level per image with its std map."""
        if self.noise_range is None:
            return x + self.noise_std * torch.randn(x.shape, generator=gen)
        lo, hi = np.log(self.noise_range[0]), np.log(self.noise_range[1])
        sigma = torch.exp(lo + (hi - lo) * torch.rand((x.shape[0],) + (1,) * (x.ndim - 1), generator=gen))
        noisy = x + sigma * torch.randn(x.shape, generator=gen)
        return torch.cat([noisy, sigma.expand_as(x)], dim=1)


def _unit_max(images: np.ndarray) -> torch.Tensor:
    """(N, Ny, Nx) images (or (N, Nz, Ny, Nx) volumes) -> (N, 1, ...) float32 tensor, each divided
    by its maximum."""
    t = torch.from_numpy(images.astype(np.float32))[:, None]
    return t / t.flatten(1).amax(1).clamp_min(1e-30).reshape((-1,) + (1,) * (t.ndim - 1))
