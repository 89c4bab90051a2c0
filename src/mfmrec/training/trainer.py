"""The one training loop, on ``accelerate``: CPU, one GPU, many GPUs or nodes (DDP, or
FSDP through accelerate's plugin).

It knows only the :class:`~mfmrec.models.base.Recommender` contract: samples from
``model.train_data(dataset, "train", seed)``, batches from ``model.collate``, the loss
from ``model.training_loss``. AdamW sees only trainable parameters (decay on matrices,
none on biases and norms), the learning rate warms up linearly over ``warmup_ratio`` of
the steps and decays linearly to the end, gradients are clipped, and autocast runs where
the device supports it.

Exact resume: data order depends only on (seed, epoch) (:mod:`mfmrec.training.data`),
per-sample randomness only on (seed, epoch, index) (``set_epoch``), and a checkpoint
stores trainable tensors, optimizer, scheduler, grad scaler, every process's RNG and the
position inside the epoch, so a killed run resumed from its last checkpoint ends with
the same weights as one that never stopped (bit for bit on CPU; on CUDA with
``train.deterministic: true``, since some GPU kernels reduce in a varying order). The
same number of processes is required to resume.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator, FullyShardedDataParallelPlugin
from accelerate.state import AcceleratorState, PartialState
from accelerate.utils import (
    DistributedDataParallelKwargs,
    DistributedType,
    gather_object,
    parse_flag_from_env,
    send_to_device,
    set_seed,
)
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_optimizer_state_dict,
)

from mfmrec.errors import ConfigError
from mfmrec.training import checkpoint as ckpt_io
from mfmrec.training.config import RunConfig, TrainConfig
from mfmrec.training.data import EpochBatchSampler, Shard, begin_epoch, build_loader
from mfmrec.training.efficiency import CostMeter, MemoryMonitor, efficiency_report
from mfmrec.training.integrity import DivergenceGuard
from mfmrec.training.peak import Peak, matmul_precision, peak_flops
from mfmrec.training.progress import MetricsLog, ProgressDisplay
from mfmrec.training.speedups import loss_function

_PREFIX = "model."  # parameter names inside _LossModule


@dataclass
class TrainState:
    """Where training stands; a checkpoint stores it and resume continues from it."""

    step: int = 0  # optimizer steps done
    epoch: int = 0  # the epoch in progress
    batch: int = 0  # micro-batches of that epoch already consumed
    samples: int = 0  # samples seen by all processes together
    elapsed: float = 0.0  # training seconds over every session of the run


@dataclass
class TrainResult:
    state: TrainState
    total_steps: int
    efficiency: dict
    trainable: dict[str, torch.Tensor]  # final trainable tensors (main process; else empty)
    last_loss: float | None = None
    history: list[dict] = field(default_factory=list)
    already_finished: bool = False  # resume of a finished run: nothing was trained


class _LossModule(nn.Module):
    """Routes ``training_loss`` through ``forward`` so DDP/FSDP hooks and autocast run."""

    def __init__(self, model: nn.Module, loss: Callable[[dict], torch.Tensor]):
        super().__init__()
        self.model, self.loss = model, loss  # loss: model.training_loss, maybe compiled

    def forward(self, batch: dict) -> torch.Tensor:
        return self.loss(batch)


def process_state(cpu: bool = False) -> PartialState:
    """This process's place in the launch (rank, world, device).

    accelerate joins CPU processes into a gloo group only when told it runs on CPU, so
    ``cpu`` is implied by ``ACCELERATE_USE_CPU`` (``accelerate launch --cpu``) and by the
    absence of any accelerator.
    """
    backend = getattr(torch, "accelerator", None)
    has_accelerator = backend.is_available() if backend else torch.cuda.is_available()
    cpu = cpu or parse_flag_from_env("ACCELERATE_USE_CPU") or not has_accelerator
    return PartialState(cpu=cpu)


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` -> bf16 on CUDA that supports it, fp16 on older CUDA, ``no`` elsewhere."""
    if precision == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "no"
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError("config field train.precision: fp16 needs a CUDA device "
                          f"(training on {device.type}); use bf16 or no")
    return precision


def linear_schedule(total_steps: int, warmup_steps: int,
                    decay: bool = True) -> Callable[[int], float]:
    """LR factor of optimizer step ``s`` (0-based): (s+1)/warmup up to the peak, then a
    linear decay that reaches 1/(total-warmup) at the last step (no step gets lr 0), or,
    with ``decay=False``, the peak held to the end (``train.schedule: constant``)."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if not decay:
            return 1.0
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return factor


def optimizer_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Trainable parameters only; no decay on vectors (biases, norm scales)."""
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    if not decay and not no_decay:
        raise ConfigError("the model has no trainable parameters")
    groups = [{"params": decay, "weight_decay": weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


class Trainer:
    """Trains one model on one dataset into ``run_dir`` (checkpoints, metrics.jsonl).

    ``callbacks`` are called with the :class:`TrainState` after every optimizer step,
    after that step's checkpoint (if any) is on disk; an exception raised there stops
    training like a kill would.
    """

    def __init__(self, model: nn.Module, dataset: Any, config: RunConfig, run_dir: str | Path,
                 *, reference: dict | None = None, quiet: bool = False,
                 callbacks: Sequence[Callable[[TrainState], None]] = ()):
        self.model, self.dataset, self.config = model, dataset, config
        self.cfg: TrainConfig = config.train
        self.run_dir = Path(run_dir)
        self.reference = reference or {}
        self.quiet, self.callbacks = quiet, list(callbacks)
        self.state = TrainState()

    # ---- setup -------------------------------------------------------------------------
    def _accelerator(self) -> Accelerator:
        # a process may train several models one after another (the demo does)
        AcceleratorState._reset_state()
        if self.cfg.deterministic:
            # cuBLAS reads this before its first handle exists; CPU kernels are always exact
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
        state = process_state(self.cfg.cpu)
        self.precision = resolve_precision(self.cfg.precision, state.device)
        fsdp = None
        if self.cfg.distributed == "fsdp":
            # FSDP2 with the whole model as one unit: training_loss may read any submodule's
            # weights directly (e.g. a tied output layer), which finer units would shard
            fsdp = FullyShardedDataParallelPlugin(fsdp_version=2, auto_wrap_policy="no_wrap")
        ddp = DistributedDataParallelKwargs(find_unused_parameters=self.cfg.find_unused_parameters)
        return Accelerator(cpu=state.device.type == "cpu", mixed_precision=self.precision,
                           fsdp_plugin=fsdp, kwargs_handlers=[ddp],
                           step_scheduler_with_optimizer=False)

    def _setup(self, resume: ckpt_io.Checkpoint | None) -> None:
        cfg, acc = self.cfg, self.accelerator
        self.fsdp = acc.distributed_type == DistributedType.FSDP
        self.strategy = "fsdp" if self.fsdp else "ddp" if acc.num_processes > 1 else "none"
        if cfg.distributed == "fsdp" and not self.fsdp and acc.num_processes > 1:
            warnings.warn("train.distributed=fsdp: accelerate shards only on accelerators; "
                          f"these {acc.num_processes} {acc.device.type} processes use DDP",
                          stacklevel=2)
        if resume is not None:
            self.model.load_trainable_state_dict(resume.trainable)
        self.model.train()
        self.samples = self.model.train_data(self.dataset, "train", cfg.seed)
        shard = Shard(acc.process_index, acc.num_processes)
        self.sampler = EpochBatchSampler(len(self.samples), cfg.batch_size, cfg.seed, shard,
                                         lengths=self._lengths(), window=cfg.bucket_window)
        self.loader = build_loader(self.samples, self.sampler, self.model.collate,
                                   cfg.num_workers, cfg.seed, acc.device.type == "cuda")
        self.steps_per_epoch = math.ceil(len(self.sampler) / cfg.gradient_accumulation)
        total = cfg.epochs * self.steps_per_epoch
        self.total_steps = min(total, cfg.max_steps) if cfg.max_steps else total
        optimizer = torch.optim.AdamW(
            optimizer_groups(self.model, cfg.weight_decay), lr=cfg.lr, betas=cfg.adam_betas,
            eps=cfg.adam_eps)
        loss = _LossModule(self.model, loss_function(self.model, cfg))
        self.wrapped, self.optimizer = acc.prepare(loss, optimizer)
        self.guard = DivergenceGuard(acc, self.run_dir)
        warmup = int(cfg.warmup_ratio * self.total_steps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer.optimizer,
            linear_schedule(self.total_steps, warmup, decay=cfg.schedule == "linear"))
        if resume is not None:
            self._restore(resume)
        else:
            set_seed(cfg.seed + acc.process_index)  # distinct dropout per process

    def _lengths(self) -> Callable[[int], Any] | None:
        """The training data's per-epoch sample lengths when ``train.length_bucketing``."""
        if not self.cfg.length_bucketing:
            return None
        lengths = getattr(self.samples, "lengths", None)
        if not callable(lengths):
            raise ConfigError(f"config field train.length_bucketing: the training samples of "
                              f"{self.config.model_name} report no lengths; set it false")
        return lengths

    def _restore(self, ck: ckpt_io.Checkpoint) -> None:
        acc = self.accelerator
        if ck.state.get("world_size") != acc.num_processes:
            raise ConfigError(f"cannot resume exactly: the checkpoint was written by "
                              f"{ck.state.get('world_size')} processes, this run has "
                              f"{acc.num_processes}")
        set_optimizer_state_dict(self.wrapped, self.optimizer.optimizer, ck.optimizer,
                                 options=StateDictOptions(full_state_dict=True))
        self.scheduler.load_state_dict(ck.state["scheduler"])
        if acc.scaler is not None and ck.state.get("scaler"):
            acc.scaler.load_state_dict(ck.state["scaler"])
        self.state = TrainState(**{k: ck.state[k] for k in asdict(TrainState())})
        ckpt_io.set_rng_state(*ck.rng[acc.process_index])  # last: nothing draws after it

    # ---- checkpoints -------------------------------------------------------------------
    def trainable_state(self) -> dict[str, torch.Tensor]:
        """Full trainable tensors (gathered under FSDP; a collective there)."""
        if not self.fsdp:
            return self.model.trainable_state_dict()
        full = get_model_state_dict(
            self.wrapped, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        names = {n for n, p in self.model.named_parameters() if p.requires_grad}
        return {k[len(_PREFIX):]: v for k, v in full.items() if k[len(_PREFIX):] in names}

    def _checkpoint(self) -> None:
        acc = self.accelerator
        self.guard.weights(self.model, self.state.step)
        trainable = self.trainable_state()
        optim = get_optimizer_state_dict(
            self.wrapped, self.optimizer.optimizer,
            options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        rng = [ckpt_io.rng_state()]
        if acc.num_processes > 1:
            rng = gather_object(rng)
        if acc.is_main_process:
            state = {**asdict(self.state), "world_size": acc.num_processes,
                     "total_steps": self.total_steps,
                     "scheduler": self.scheduler.state_dict(),
                     "scaler": acc.scaler.state_dict() if acc.scaler is not None else None}
            ck = ckpt_io.Checkpoint(trainable, optim, rng, state)
            ckpt_io.save_checkpoint(self.run_dir, ck, self.config, self.reference,
                                    keep=self.cfg.keep_checkpoints)
        acc.wait_for_everyone()

    # ---- the loop ----------------------------------------------------------------------
    def _micro_step(self, batch: Any, last: bool, scale: float) -> torch.Tensor:
        acc = self.accelerator
        self.costs.add(self.model.batch_cost(batch))  # on the CPU batch: pure counting
        batch = send_to_device(batch, acc.device)
        sync = contextlib.nullcontext() if last else acc.no_sync(self.wrapped)
        with sync:
            with acc.autocast():
                loss = self.wrapped(batch)
            acc.backward(loss * scale)
        return loss.detach().float()

    def _optimizer_step(self, batches) -> torch.Tensor:
        """One optimizer step over the next micro-batches of the epoch; returns the loss."""
        cfg, acc, st = self.cfg, self.accelerator, self.state
        n = min(cfg.gradient_accumulation, len(self.sampler) - st.batch)
        loss = torch.zeros((), device=acc.device)
        for i in range(n):
            loss += self._micro_step(next(batches), i == n - 1, 1.0 / n) / n
            st.samples += self.sampler.batch_len(st.batch + i) * acc.num_processes
        self.guard.loss(loss, st.step + 1)
        if cfg.grad_clip > 0:
            acc.clip_grad_norm_(self.wrapped.parameters(), cfg.grad_clip)
        self.optimizer.step()
        if not acc.optimizer_step_was_skipped:  # fp16 overflow: keep the schedule in place
            self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        st.batch += n
        st.step += 1
        return loss

    def _epoch(self, epoch: int, log: _Logger) -> None:
        st = self.state
        batches = begin_epoch(self.loader, epoch, st.batch)
        while st.batch < len(self.sampler) and st.step < self.total_steps:
            tick = time.perf_counter()
            lr = self.scheduler.get_last_lr()[0]
            loss = self._optimizer_step(batches)
            st.elapsed += time.perf_counter() - tick
            epoch_end = st.batch == len(self.sampler)
            if epoch_end:
                st.epoch, st.batch = epoch + 1, 0
            log.step(loss, lr)
            every = self.cfg.checkpoint_every
            over = self._over_budget()
            if (epoch_end or over or st.step == self.total_steps
                    or (every and st.step % every == 0)):
                self._checkpoint()
            for callback in self.callbacks:
                callback(st)
            if epoch_end or over:
                break

    def _over_budget(self) -> bool:
        """Whether ``train.max_minutes`` of training time are spent (any process decides,
        so that all stop at the same step)."""
        if self.cfg.max_minutes is None:
            return False
        over = torch.tensor([float(self.state.elapsed >= 60.0 * self.cfg.max_minutes)],
                            device=self.accelerator.device)
        self.out_of_time = bool(self.accelerator.reduce(over, "max").item() > 0)
        return self.out_of_time

    def _max_over_processes(self, memory: dict) -> dict:
        acc = self.accelerator
        if acc.num_processes == 1 or memory.get("peak_memory_bytes") is None:
            return memory
        peak = torch.tensor([memory["peak_memory_bytes"]], device=acc.device)
        return {**memory, "peak_memory_bytes": int(acc.gather(peak).max()),
                "peak_memory_scope": "max over processes"}

    def _costs(self) -> tuple[CostMeter, Peak | None]:
        """Every process's tokens and FLOPs summed, and one device's peak FLOP/s (looked up
        or benchmarked by the main process, and only when there are FLOPs to compare)."""
        acc, costs = self.accelerator, self.costs
        if acc.num_processes > 1:
            costs = CostMeter(acc.reduce(costs.tensor(acc.device), "sum").tolist())
        if costs.flops is None or not acc.is_main_process:
            return costs, None
        return costs, peak_flops(acc.device, matmul_precision(self.precision, acc.device))

    def fit(self, resume: bool = False) -> TrainResult:
        """Train to the end (or resume from the latest checkpoint and train to the end)."""
        self.accelerator = acc = self._accelerator()
        found = ckpt_io.latest_checkpoint(self.run_dir) if resume else None
        self._setup(ckpt_io.read_checkpoint(found) if found else None)
        start = self.state.step
        session_time, session_samples = self.state.elapsed, self.state.samples
        log = _Logger(self, start)
        self.costs = CostMeter()
        monitor = MemoryMonitor(acc.device).start()
        try:
            with log.display:
                while (self.state.step < self.total_steps and self.state.epoch < self.cfg.epochs
                       and not self._over_budget()):
                    self._epoch(self.state.epoch, log)
        finally:  # a kill (an exception from a callback) must not leave the sampler running
            memory = monitor.stop()
        memory = self._max_over_processes(memory)
        seconds = self.state.elapsed - session_time
        samples = self.state.samples - session_samples
        per_epoch = self.sampler.per_process * acc.num_processes
        costs, peak = self._costs()
        report = efficiency_report(
            self.model, train_seconds=seconds, epochs=samples / per_epoch, samples=samples,
            steps=self.state.step - start, memory=memory, costs=costs, peak=peak,
            device=str(acc.device), processes=acc.num_processes, precision=self.precision,
            distributed=self.strategy)
        trainable = self.trainable_state()
        return TrainResult(self.state, self.total_steps, report,
                           trainable if acc.is_main_process else {},
                           log.last_loss, log.metrics.read() if acc.is_main_process else [])


class _Logger:
    """Window statistics for metrics.jsonl and the progress bar (main process writes)."""

    def __init__(self, trainer: Trainer, start: int):
        self.t, acc = trainer, trainer.accelerator
        main = acc.is_main_process
        self.metrics = MetricsLog(trainer.run_dir / "metrics.jsonl", enabled=main)
        self.metrics.truncate_after(start)
        title = f"{trainer.config.model_name} epoch {trainer.state.epoch + 1}"
        self.display = ProgressDisplay(trainer.total_steps, start, title,
                                       enabled=main and not trainer.quiet)
        self.loss_sum = torch.zeros((), device=acc.device)
        self.count, self.last_loss = 0, None
        self.window_time, self.window_samples = trainer.state.elapsed, trainer.state.samples

    def step(self, loss: torch.Tensor, lr: float) -> None:
        t, st = self.t, self.t.state
        self.loss_sum += loss
        self.count += 1
        title = f"{t.config.model_name} epoch {min(st.epoch + 1, t.cfg.epochs)}/{t.cfg.epochs}"
        if st.step % t.cfg.log_every and st.step != t.total_steps:
            self.display.update(st.step, title)
            return
        mean = t.accelerator.reduce(self.loss_sum / self.count, "mean").item()
        seconds = st.elapsed - self.window_time
        rate = (st.samples - self.window_samples) / seconds if seconds > 0 else None
        epoch = st.epoch + st.batch / len(t.sampler)
        self.metrics.write({"step": st.step, "epoch": round(epoch, 4), "loss": mean, "lr": lr,
                            "samples_per_s": round(rate, 3) if rate else None,
                            "elapsed": round(st.elapsed, 4)})
        self.display.update(st.step, title, mean, rate)
        self.loss_sum.zero_()
        self.count, self.last_loss = 0, mean
        self.window_time, self.window_samples = st.elapsed, st.samples
