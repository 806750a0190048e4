"""The agent's side of weight sync: a model whose weights change between steps, never during one.

Two copies of the module exist. The acting thread uses the active one through
:meth:`SwappableModel.current`. A loader thread copies new weights into the spare one with
:meth:`SwappableModel.prepare` (checked first: names, shapes, dtypes, finiteness and version
order), and the acting thread calls :meth:`SwappableModel.swap_if_ready` between steps, which
exchanges the two references in O(1) and never waits for a load in progress. The module that
was active becomes the spare; it is written again only by a later ``prepare``, after the
acting thread has swapped, i.e. after it finished the step that used it. No ROS import here.
"""

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from pamiq_ros.core.weights import NonFiniteWeightsError, WeightsError, non_finite_count


def copy_tensor(target: torch.Tensor, source: torch.Tensor) -> None:
    """Copies ``source`` into ``target`` (same shape), casting floating-point dtypes.

    CPU tensors of one dtype go through numpy: on a 2-core machine ``Tensor.copy_`` with
    torch's intra-op threads was seen 20 times slower than a single-threaded copy.
    """
    if (
        target.device.type == source.device.type == "cpu"
        and target.dtype == source.dtype
        and target.dtype != torch.bfloat16
        and not target.requires_grad
    ):
        np.copyto(target.numpy(), source.detach().numpy(), casting="no")
    else:
        with torch.no_grad():
            target.copy_(source)


@dataclass(frozen=True)
class SwapRecord:
    """One swap: which version became active and how long after its announcement.

    Attributes:
        version: The version now acted with.
        swapped_at: Wall-clock time of the swap (``time.time()``).
        announced_at: Wall-clock time the trainer announced the version, if known.
    """

    version: int
    swapped_at: float
    announced_at: float | None

    @property
    def lag_s(self) -> float | None:
        """Seconds from the announcement to the swap, if the announcement time is known."""
        return None if self.announced_at is None else self.swapped_at - self.announced_at


@dataclass(frozen=True)
class _Prepared:
    version: int
    announced_at: float | None


class SwappableModel:
    """A model the acting thread uses while a loader thread prepares newer weights.

    Acting uses ``current()``; a loader thread ``prepare()``s new weights into a spare copy;
    the acting thread calls ``swap_if_ready()`` between steps (O(1), never blocks on loading).
    Both copies are in eval mode with gradients off.

    Version 0 names the initial weights. The module built locally counts as version 0 until
    weights arrive, and the trainer's version 0 (its initial weights) is still accepted then,
    so agent and trainer start from the same weights.
    """

    def __init__(self, name: str, build: Callable[[], torch.nn.Module]) -> None:
        """Builds the active and the spare module.

        Args:
            name: The model's name (the one its weights are announced under).
            build: Makes a new module; called twice. Its parameters' shapes and dtypes are what
                prepared weights must match.
        """
        self.name = name
        active, spare = self._build(build), self._build(build)
        self._active = (active, 0)  # replaced as a whole: one atomic read
        self._spare = spare
        # Each module's state-dict tensors (views of its parameters), listed once so that a
        # swap only exchanges references.
        self._targets = {id(module): module.state_dict() for module in (active, spare)}
        self._received_any = False  # False: the active weights are the locally built ones
        self._prepare_lock = threading.Lock()  # held while the spare is written
        self._state_lock = threading.Lock()  # guards the fields below and _active's writers
        self._prepared: _Prepared | None = None
        self._last_swap: SwapRecord | None = None

    @staticmethod
    def _build(build: Callable[[], torch.nn.Module]) -> torch.nn.Module:
        module = build()
        module.eval()
        module.requires_grad_(False)
        return module

    def current(self) -> tuple[torch.nn.Module, int]:
        """The module to act with (eval mode) and its weights' version."""
        return self._active

    @property
    def version(self) -> int:
        """The version of the active weights."""
        return self._active[1]

    def pending_version(self) -> int | None:
        """The version prepared and waiting for ``swap_if_ready``, if any."""
        with self._state_lock:
            return None if self._prepared is None else self._prepared.version

    def accepts(self, version: int) -> bool:
        """Whether ``prepare`` would take this version (newer than the active and pending)."""
        with self._state_lock:
            return self._accepts(version)

    def _accepts(self, version: int) -> bool:
        newest = self._active[1]
        if self._prepared is not None:
            newest = max(newest, self._prepared.version)
        if version > newest:
            return True
        # The trainer's initial weights replace the locally built ones.
        return version == 0 == newest and not self._received_any and self._prepared is None

    def last_swap(self) -> SwapRecord | None:
        """The most recent swap, if any."""
        with self._state_lock:
            return self._last_swap

    def prepare(
        self,
        state_dict: Mapping[str, torch.Tensor],
        version: int,
        announced_at: float | None = None,
        *,
        check_finite: bool = True,
    ) -> None:
        """Loads weights into the spare module; the next ``swap_if_ready`` makes them active.

        Called from a loader thread. Everything is checked before the spare is written, so a
        refused state dict leaves an earlier prepared version intact.

        Args:
            state_dict: Tensor name -> tensor; must hold exactly the module's names, with the
                same shapes (dtypes may differ only between floating-point types).
            version: Must be newer than the active and any pending version.
            announced_at: Wall-clock time (``time.time()``) of the announcement, for
                :meth:`last_swap`.
            check_finite: Refuse NaN/Inf (turn off only for tensors already checked).

        Raises:
            WeightsError: On an old version, missing or unexpected names, a shape or dtype
                mismatch, or NaN/Inf (``NonFiniteWeightsError``, naming the tensor).
        """
        where = f"weights of model {self.name!r} version {version}"
        with self._prepare_lock:
            self._check_version(version, where)
            self._check_tensors(state_dict, where, check_finite)
            with self._state_lock:
                self._prepared = None  # the spare is about to change
            for name, target in self._targets[id(self._spare)].items():
                copy_tensor(target, state_dict[name])
            with self._state_lock:
                # Only swap_if_ready and load_state_dict change the active version, and both
                # take the prepare lock: the version check above still holds.
                self._prepared = _Prepared(version, announced_at)

    def _check_version(self, version: int, where: str) -> None:
        with self._state_lock:
            if self._accepts(version):
                return
            active, pending = self._active[1], self._prepared
        detail = f"active version {active}" + (
            f", version {pending.version} pending" if pending else ""
        )
        raise WeightsError(f"{where}: not newer than the {detail} (versions only increase)")

    def _check_tensors(
        self, state_dict: Mapping[str, torch.Tensor], where: str, check_finite: bool
    ) -> None:
        expected = self._targets[id(self._spare)]
        missing = sorted(set(expected) - set(state_dict))
        unexpected = sorted(set(state_dict) - set(expected))
        if missing or unexpected:
            raise WeightsError(
                f"{where}: tensor names do not match the model (missing {missing[:5]}, "
                f"unexpected {unexpected[:5]})"
            )
        for name, target in expected.items():
            value = state_dict[name]
            if not isinstance(value, torch.Tensor):
                raise WeightsError(f"{where}: {name!r} is a {type(value).__name__}, not a tensor")
            if value.shape != target.shape:
                raise WeightsError(
                    f"{where}: tensor {name!r} has shape {list(value.shape)}, the model's is "
                    f"{list(target.shape)}"
                )
            if value.dtype != target.dtype and not (
                value.dtype.is_floating_point and target.dtype.is_floating_point
            ):
                raise WeightsError(
                    f"{where}: tensor {name!r} has dtype {value.dtype}, the model's is "
                    f"{target.dtype}"
                )
            if check_finite and non_finite_count(value):
                raise NonFiniteWeightsError(f"{where}: tensor {name!r} holds NaN/Inf values")

    def swap_if_ready(self) -> int | None:
        """Makes prepared weights active; call between steps from the acting thread.

        Returns at once, without swapping, while a ``prepare`` is writing the spare.

        Returns:
            The new active version, or None if nothing was swapped.
        """
        if not self._prepare_lock.acquire(blocking=False):
            return None  # loading in progress: act with the current weights
        try:
            with self._state_lock:
                prepared = self._prepared
                if prepared is None:
                    return None
                old_module = self._active[0]
                self._active = (self._spare, prepared.version)
                self._spare = old_module
                self._prepared = None
                self._received_any = True
                self._last_swap = SwapRecord(prepared.version, time.time(), prepared.announced_at)
                return prepared.version
        finally:
            self._prepare_lock.release()

    # --- checkpoints -----------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The active weights (copies) and their version, for the agent's checkpoint.

        Returns:
            ``{"version": int, "weights": {name: tensor}}`` (loadable with
            ``torch.load(..., weights_only=True)``).
        """
        # Holding the prepare lock keeps a loader from writing this module should the acting
        # thread swap it out meanwhile (swap_if_ready then just waits for the next step).
        with self._prepare_lock, torch.no_grad():
            module, version = self._active
            weights = {name: value.detach().clone() for name, value in module.state_dict().items()}
        return {"version": version, "weights": weights}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restores weights saved by :meth:`state_dict` and makes them active at once.

        Call before acting starts or from the acting thread. The version may be any (a resumed
        agent goes back to its checkpoint's version).

        Raises:
            WeightsError: If the state is malformed or the weights do not fit the model.
        """
        version = state.get("version")
        weights = state.get("weights")
        if isinstance(version, bool) or not isinstance(version, int) or version < 0:
            raise WeightsError(f"model {self.name!r} checkpoint: invalid version {version!r}")
        if not isinstance(weights, Mapping):
            raise WeightsError(f"model {self.name!r} checkpoint: no weights mapping")
        where = f"model {self.name!r} checkpoint version {version}"
        with self._prepare_lock:
            self._check_tensors(weights, where, check_finite=True)
            for name, target in self._targets[id(self._spare)].items():
                copy_tensor(target, weights[name])
            with self._state_lock:
                old_module = self._active[0]
                self._active = (self._spare, version)
                self._spare = old_module
                self._prepared = None
                # A checkpoint of the locally built weights still takes the trainer's version 0.
                self._received_any = version > 0
