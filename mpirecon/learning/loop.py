"""The training loop shared by learned methods: MSE loss, Adam with cosine decay, the model with
the best validation loss saved after every improvement, a checkpoint ``OUTPUT.ckpt`` after every
epoch (``resume`` continues from it; removed after a successful run unless ``keep_checkpoint``),
a wall-time budget, progress, and data-parallel training under ``torchrun`` (DDP, gloo on the CPU
/ nccl on GPUs) with the same call::

    with training_session(device, seed) as session:
        data = SimulatedPairs(...)                       # or any object with the same protocol
        net = build_model(...)
        result = fit(net, data, predict, "w.pt", kind="mymethod", metadata={...}, config=cfg,
                     session=session)

``cfg`` is the method's pydantic training config; the loop reads its fields ``epochs``,
``batch_size``, ``lr``, ``seed``, ``max_minutes`` and ``keep_checkpoint``.
"""
from __future__ import annotations

import math
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import torch
import torch.distributed as dist

from mdf_io.errors import MDFDiskFullError
from mpirecon.progress import Progress
from mpirecon.io.provenance import command_line

#: config fields that steer a run but not what it learns: they may differ on ``resume``
RUN_CONTROL = frozenset({"device", "max_minutes", "num_threads", "keep_checkpoint"})

from mpirecon.learning.weights import WeightsError, error_line, load_weights, save_weights


@dataclass
class TrainResult:
    """History (one dict per epoch), best validation loss/PSNR (dB), best epoch (1-based),
    wall time (s) and the weights path."""

    path: Path
    history: list = field(default_factory=list)
    best_val_loss: float = math.inf
    best_val_psnr: float = -math.inf
    best_epoch: int = -1
    seconds: float = 0.0

    def summary(self) -> dict:
        """JSON-ready summary (what ``Reconstructor.train`` returns and ``mpirecon train`` prints)."""
        return {"weights": str(self.path), "best_epoch": self.best_epoch, "best_val_loss": self.best_val_loss,
                "best_val_psnr": self.best_val_psnr, "minutes": self.seconds / 60}


@dataclass(frozen=True)
class Session:
    """This process in a (possibly distributed) training run: rank, world size, torch device,
    and the start time (``time.perf_counter()``) the wall-time budget counts from."""

    rank: int
    world: int
    device: torch.device
    started: float


@contextmanager
def training_session(device: str = "cpu", seed: int = 0, num_threads: Optional[int] = None):
    """Set threads and the torch seed, join the process group when launched by torchrun
    (WORLD_SIZE > 1), and yield a :class:`Session`; the group is left on exit."""
    started = time.perf_counter()
    joined = False
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
        joined = True
    rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_available() and dist.is_initialized() else (0, 1)
    if num_threads:
        torch.set_num_threads(num_threads)
    torch.manual_seed(seed)
    dev = torch.device(device if not device.startswith("cuda") or world == 1
                       else f"cuda:{rank % max(torch.cuda.device_count(), 1)}")
    try:
        yield Session(rank, world, dev, started)
        if joined:
            dist.barrier()
    finally:
        if joined:
            dist.destroy_process_group()


def fit(net: torch.nn.Module, data, predict: Callable, out_path, *, kind: str, metadata: dict, config,
        session: Session, resume=None, progress: bool = True, lr_final: float = 0.02,
        label: str = "epoch") -> TrainResult:
    """Train ``net`` on ``data`` and save the best model (validation MSE) as ``kind`` weights.

    Args:
        net: the model (moved to the session's device here).
        data: ``samples``, ``start_epoch(epoch)``, ``batch(idx, generator) -> (inputs, targets)``
            and ``validation = (inputs, targets)`` (see :mod:`mpirecon.learning.data`).
        predict: ``predict(model, inputs) -> outputs`` shaped like the targets; the loss is their MSE.
        out_path: weights file, rewritten at every improvement with ``metadata`` plus history and
            best figures; the checkpoint is ``out_path + '.ckpt'`` (kind ``kind + '-checkpoint'``).
        config: the pydantic training config (fields ``epochs``, ``batch_size``, ``lr`` — decayed
            by a cosine schedule to ``lr * lr_final``, 1.0 keeps it constant —, ``seed``,
            ``max_minutes`` (None: no budget), ``keep_checkpoint``); all fields but
            :data:`RUN_CONTROL` must match for ``resume``.
        resume: a checkpoint to continue from.
        label: progress label of an epoch.
    Returns:
        :class:`TrainResult`.
    """
    rank, world, device = session.rank, session.world, session.device
    recipe = config.model_dump(mode="json", exclude=set(RUN_CONTROL))
    epochs, batch_size, max_minutes = config.epochs, config.batch_size, config.max_minutes
    out_path = Path(out_path)
    ckpt_path = Path(str(out_path) + ".ckpt")
    net = net.to(device)
    model = net
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, fused=True)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs,
                                                       eta_min=config.lr * lr_final)
    result = TrainResult(path=out_path)
    command = command_line()
    best_state, start_epoch = None, 0
    if resume:
        best_state, start_epoch = _resume(resume, kind, recipe, net, opt, sched, result)

    def save_best():
        save_weights(out_path, kind, best_state, dict(metadata, command=command, history=result.history,
                                                      best_epoch=result.best_epoch,
                                                      best_val_loss=result.best_val_loss,
                                                      best_val_psnr=result.best_val_psnr), overwrite=True)

    if rank == 0:  # the weights and the checkpoint must fit before hours of training start
        check_training_space(net, out_path)
    for epoch in range(start_epoch, epochs):
        t_epoch = time.perf_counter()
        model.train()
        gen = torch.Generator().manual_seed(config.seed * 100003 + epoch)
        data.start_epoch(epoch)
        order = torch.randperm(data.samples, generator=gen)[rank::world]
        total, count = 0.0, 0
        with Progress(len(order), f"{label} {epoch + 1}/{epochs}",
                      enabled=progress and rank == 0) as bar:
            for i in range(0, len(order), batch_size):
                idx = order[i:i + batch_size]
                inputs, target = data.batch(idx, gen)
                pred = predict(model, inputs.to(device))  # model may be DDP-wrapped: same forward
                loss = torch.mean((pred - target.to(device)) ** 2)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
                count += len(idx)
                bar.update(len(idx), loss=total / count)
        sched.step()
        val_loss, val_psnr = validate(net, predict, data.validation, device, batch_size * 4)
        train_loss = total / max(count, 1)
        if world > 1:
            t = torch.tensor([train_loss], dtype=torch.float64)
            dist.all_reduce(t)
            train_loss = float(t) / world
        entry = {"epoch": epoch + 1, "train_loss": train_loss, "val_loss": val_loss, "val_psnr": val_psnr,
                 "seconds": time.perf_counter() - t_epoch, "lr": opt.param_groups[0]["lr"]}
        result.history.append(entry)
        if val_loss < result.best_val_loss:
            result.best_val_loss, result.best_val_psnr, result.best_epoch = val_loss, val_psnr, epoch + 1
            best_state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
            if rank == 0:
                save_best()
        if rank == 0:
            if progress:
                Progress(1, enabled=True).message(
                    f"{label} {epoch + 1}: train loss {train_loss:.4g}  val loss {val_loss:.4g}  "
                    f"val PSNR {val_psnr:.2f} dB  ({entry['seconds']:.0f} s)")
            save_weights(ckpt_path, kind + "-checkpoint",
                         {"model": net.state_dict(), "optimizer": opt.state_dict(), "rng": torch.get_rng_state(),
                          "best": best_state},
                         {"epoch": epoch, "config": recipe, "history": result.history,
                          "scheduler": sched.state_dict(), "best_val_loss": result.best_val_loss,
                          "best_val_psnr": result.best_val_psnr, "best_epoch": result.best_epoch}, overwrite=True)
        elapsed = (time.perf_counter() - session.started) / 60
        per_epoch = elapsed / (epoch + 1 - start_epoch)
        if max_minutes is not None and elapsed + per_epoch > max_minutes and epoch + 1 < epochs:
            if rank == 0 and progress:
                Progress(1).message(f"stopping after {label} {epoch + 1}: the next one would pass "
                                    f"max_minutes={max_minutes}")
            break
    if rank == 0 and best_state is not None:  # final metadata carries the whole history
        try:
            save_best()
        except MDFDiskFullError as err:  # the file of the last improvement stays: say so
            raise MDFDiskFullError(out_path, err.needs, err.written, note=(
                f"the best model (epoch {result.best_epoch}, validation PSNR {result.best_val_psnr:.2f} dB) "
                f"is kept in {out_path} without the final history, the checkpoint in {ckpt_path}")) from None
    if rank == 0 and not config.keep_checkpoint and ckpt_path.exists():
        ckpt_path.unlink()
    result.seconds = time.perf_counter() - session.started
    return result


def check_training_space(net: torch.nn.Module, out_path: Path) -> None:
    """:class:`MDFDiskFullError` before training unless the weights file and the checkpoint (model,
    Adam's two moments and the best model: 4 x the weights) fit the free space, with 1 MB per file
    for the metadata and history."""
    from mpirecon.io.outputs import check_space
    weights = sum(t.numel() * t.element_size() for t in net.state_dict().values())
    needs = weights + 2 ** 20
    if out_path.exists():  # replaced atomically: the old file stays until the new one is complete
        needs += out_path.stat().st_size
    check_space(out_path, needs + 4 * weights + 2 ** 20)


def _resume(path, kind: str, recipe: dict, net, opt, sched, result: TrainResult) -> tuple[Optional[dict], int]:
    """Load checkpoint ``path`` into net/optimizer/scheduler/RNG and ``result``; returns
    (best state so far, first epoch to run). Raises :class:`WeightsError` naming the file."""
    state, meta = load_weights(path, kind + "-checkpoint")
    if meta.get("config") != recipe:
        raise WeightsError(f"{path}: checkpoint was made with a different training config")
    try:
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(meta["scheduler"])
        torch.set_rng_state(state["rng"])
        result.history = list(meta["history"])
        result.best_val_loss = float(meta["best_val_loss"])
        result.best_val_psnr = float(meta["best_val_psnr"])
        result.best_epoch = int(meta["best_epoch"])
        return state.get("best"), int(meta["epoch"]) + 1
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise WeightsError(f"{path}: checkpoint is incomplete or does not fit the model: "
                           f"{error_line(exc)}") from None


@torch.no_grad()
def validate(net, predict: Callable, validation, device, batch: int) -> tuple[float, float]:
    """Mean MSE and mean per-sample PSNR (dB, peak = the target's maximum) over ``validation``
    = (inputs, targets), evaluated in batches of ``batch`` with ``net`` in eval mode."""
    inputs, targets = validation
    net.eval()
    se, ps = 0.0, []
    for i in range(0, inputs.shape[0], batch):
        pred = predict(net, inputs[i:i + batch].to(device)).cpu()
        gt = targets[i:i + batch]
        mse = ((pred - gt) ** 2).flatten(1).mean(1)
        se += float(mse.sum())
        peak = gt.flatten(1).amax(1)
        ps.append(10 * torch.log10(peak ** 2 / mse.clamp_min(1e-30)))
    net.train()
    return se / inputs.shape[0], float(torch.cat(ps).mean())
