"""Audio JEPA: learns to predict hidden stretches of a sound window in latent space.

The hearing of the curiosity agent, the audio counterpart of :mod:`pamiq_ros.models.jepa` (after
data2vec/wav2vec 2.0's convolutional front end and I-JEPA's masked latent prediction, as
pamiq-vrchat's audio JEPA). A window of raw samples (1 s of 16 kHz stereo by default) is cut
into patches by a stack of strided 1-D convolutions (kernels 10,3,3,3,3,2,2, strides
5,2,2,2,2,2,2: one patch per 20 ms, each seeing 25 ms), so a 1 s window gives 49 patches. A
*context encoder* (a pre-norm transformer over those patches) sees the window with a few
target stretches removed; a narrow *predictor* takes its tokens and mask tokens at the target
positions and predicts what the *target encoder* (an exponential moving average of the context
encoder, patchifier included, never trained by gradients) outputs there. The loss is the
smooth-L1 distance to the layer-normed target features.

When acting, :meth:`AudioJepaEncoder.encode` runs the target encoder on the whole window and
pools the patch features over time into ``pool_tokens`` tokens. No ROS import here.
"""

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

import numpy as np
import numpy.typing as npt
import torch
from torch import nn
from torch.nn import functional
from typing_extensions import override

from pamiq_ros.core.buffers import DataBuffer
from pamiq_ros.core.precision import autocast
from pamiq_ros.core.trainers import TorchTrainer
from pamiq_ros.models.jepa import JepaConfig, JepaPredictor, _gather_tokens, _transformer

MODEL_NAME = "audio_jepa"
"""The name the audio JEPA's weights are trained, announced and acted with under."""

AUDIO_KEY = "audio"
"""Buffer key (and record tensor) of a window: float32 ``(window_samples, channels)``."""

KERNELS = (10, 3, 3, 3, 3, 2, 2)
STRIDES = (5, 2, 2, 2, 2, 2, 2)
"""The convolutional patchifier: a receptive field of 400 samples, a hop of 320."""


@dataclass(frozen=True)
class AudioJepaConfig:
    """Sizes of an :class:`AudioJepaEncoder`.

    Attributes:
        sample_rate: Samples per second of the window (Hz).
        window_samples: Frames per window.
        channels: Audio channels (2: stereo, so direction is heard).
        conv_dim: Channels of the convolutional patchifier (its cost grows with its square).
        dim: Width of the encoders' tokens.
        depth: Transformer blocks of each encoder.
        heads: Attention heads of the encoders (divides ``dim``).
        predictor_dim: Token width of the predictor.
        predictor_depth: Transformer blocks of the predictor.
        predictor_heads: Attention heads of the predictor (divides ``predictor_dim``).
        mlp_ratio: Feed-forward width as a multiple of the token width.
        pool_tokens: :meth:`AudioJepaEncoder.encode` pools the patches to this many tokens.
    """

    sample_rate: int = 16000
    window_samples: int = 16000
    channels: int = 2
    conv_dim: int = 32
    dim: int = 64
    depth: int = 2
    heads: int = 4
    predictor_dim: int = 32
    predictor_depth: int = 1
    predictor_heads: int = 4
    mlp_ratio: float = 2.0
    pool_tokens: int = 4

    def __post_init__(self) -> None:
        for name in (
            "sample_rate", "window_samples", "channels", "conv_dim", "dim", "depth", "heads",
            "predictor_dim", "predictor_depth", "predictor_heads", "pool_tokens",
        ):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"AudioJepaConfig.{name} must be at least 1")
        if self.dim % self.heads or self.predictor_dim % self.predictor_heads:
            raise ValueError("AudioJepaConfig: heads must divide dim and predictor_dim")
        if self.num_patches < max(4, self.pool_tokens):
            raise ValueError(
                f"AudioJepaConfig.window_samples ({self.window_samples}) gives "
                f"{self.num_patches} patches, fewer than 4 or pool_tokens ({self.pool_tokens})"
            )

    @property
    def num_patches(self) -> int:
        """Patches per window."""
        length = self.window_samples
        for kernel, stride in zip(KERNELS, STRIDES, strict=True):
            length = (length - kernel) // stride + 1
        return length


PRESETS: dict[str, AudioJepaConfig] = {
    "tiny": AudioJepaConfig(),
    "small": AudioJepaConfig(
        conv_dim=128, dim=192, depth=4, heads=4, predictor_dim=96, predictor_depth=2, mlp_ratio=4.0
    ),
    "base": AudioJepaConfig(
        conv_dim=512, dim=384, depth=8, heads=6, predictor_dim=192, predictor_depth=4, mlp_ratio=4.0
    ),
}
"""Size presets named as the other models' (parameter counts: ``pamiq-ros``'s bench
``pamiq_ros.bench.audio``, and the README)."""


class ConvPatchifier(nn.Module):
    """Strided 1-D convolutions (layer norm over channels, GELU), then a projection to dim."""

    def __init__(self, channels: int, conv_dim: int, dim: int) -> None:
        """Creates the stack with fresh weights."""
        super().__init__()
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        for index, (kernel, stride) in enumerate(zip(KERNELS, STRIDES, strict=True)):
            conv = nn.Conv1d(
                channels if index == 0 else conv_dim, conv_dim, kernel, stride, bias=False
            )
            nn.init.kaiming_normal_(conv.weight)
            self.convs.append(conv)
            self.norms.append(nn.LayerNorm(conv_dim))
        self.project = nn.Linear(conv_dim, dim)

    @override
    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """``(N, channels, samples)`` -> ``(N, patches, dim)``."""
        features = audio
        for conv, norm in zip(self.convs, self.norms, strict=True):
            features = functional.gelu(norm(conv(features).transpose(1, 2)).transpose(1, 2))
        return self.project(features.transpose(1, 2))


class AudioTransformer(nn.Module):
    """Patchifier, learned positional embedding, pre-norm transformer blocks, final norm."""

    def __init__(self, config: AudioJepaConfig) -> None:
        """Creates the encoder with fresh weights."""
        super().__init__()
        self.config = config
        self.patchify = ConvPatchifier(config.channels, config.conv_dim, config.dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, config.num_patches, config.dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.blocks = _transformer(config.dim, config.depth, config.heads, config.mlp_ratio)
        self.norm = nn.LayerNorm(config.dim)

    @override
    def forward(self, audio: torch.Tensor, indices: torch.Tensor | None = None) -> torch.Tensor:
        """Encodes windows, or only some of their patches.

        Args:
            audio: Float ``(N, channels, window_samples)``.
            indices: Long ``(N, K)``: the patches to keep; all if None.

        Raises:
            ValueError: If the windows do not have the configured shape.
        """
        shape = (self.config.channels, self.config.window_samples)
        if audio.ndim != 3 or tuple(audio.shape[1:]) != shape:
            raise ValueError(f"audio must be (N, {shape[0]}, {shape[1]}), got {tuple(audio.shape)}")
        tokens = self.patchify(audio) + self.pos_embed
        if indices is not None:
            tokens = _gather_tokens(tokens, indices)
        return self.norm(self.blocks(tokens))


@dataclass(frozen=True)
class AudioMasks:
    """Patch indices of one batch: the context ``(N, Kc)`` and the targets ``(N, Kt)``."""

    context: torch.Tensor
    targets: torch.Tensor


def sample_audio_masks(
    num_patches: int,
    batch_size: int,
    generator: torch.Generator,
    blocks: int = 2,
    block_fraction: float = 0.15,
) -> AudioMasks:
    """``blocks`` target stretches of ``block_fraction`` of the window each; the rest is context.

    The same positions for the whole batch (so the shapes line up), new ones for each batch.
    """
    length = max(1, round(block_fraction * num_patches))
    hidden = torch.zeros(num_patches, dtype=torch.bool)
    for _ in range(blocks):
        start = int(torch.randint(0, num_patches - length + 1, (1,), generator=generator))
        hidden[start : start + length] = True
    if hidden.all():
        hidden[0] = False
    targets = torch.nonzero(hidden).flatten()
    context = torch.nonzero(~hidden).flatten()
    return AudioMasks(
        context.unsqueeze(0).expand(batch_size, -1), targets.unsqueeze(0).expand(batch_size, -1)
    )


class AudioJepaEncoder(nn.Module):
    """Context encoder, its EMA copy (the target encoder, used when acting) and the predictor."""

    def __init__(self, config: AudioJepaConfig | None = None) -> None:
        """Creates the model with fresh weights (from torch's global generator)."""
        super().__init__()
        self.config = config or PRESETS["tiny"]
        self.context_encoder = AudioTransformer(self.config)
        self.target_encoder = copy.deepcopy(self.context_encoder)
        self.target_encoder.requires_grad_(False)
        # The image JEPA's predictor: it reads only the widths, depths and number of patches,
        # which an AudioJepaConfig names alike.
        self.predictor = JepaPredictor(cast(JepaConfig, self.config))

    @property
    def obs_dim(self) -> int:
        """Size of one encoded window, flattened: ``pool_tokens * dim``."""
        return self.config.pool_tokens * self.config.dim

    def loss(self, audio: torch.Tensor, masks: AudioMasks) -> torch.Tensor:
        """Smooth-L1 between predicted and layer-normed target features at the target patches."""
        context_indices = masks.context.to(audio.device)
        target_indices = masks.targets.to(audio.device)
        with torch.no_grad():
            features = self.target_encoder(audio)
            features = functional.layer_norm(features, features.shape[-1:])
            targets = _gather_tokens(features, target_indices)
        context = self.context_encoder(audio, context_indices)
        predicted = self.predictor(context, context_indices, target_indices)
        return functional.smooth_l1_loss(predicted.float(), targets.float())

    @torch.no_grad()
    def update_target(self, momentum: float) -> None:
        """``target = momentum * target + (1 - momentum) * context``."""
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {momentum}")
        for target, context in zip(
            self.target_encoder.parameters(), self.context_encoder.parameters(), strict=True
        ):
            target.lerp_(context, 1.0 - momentum)

    def encode(
        self, audio: npt.NDArray[np.float32] | torch.Tensor, dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        """Target-encoder features of windows, pooled over time.

        Args:
            audio: ``(window_samples, channels)`` or ``(N, window_samples, channels)`` float32
                samples in [-1, 1] (as :func:`pamiq_ros.io.audio.decode_samples` gives), or a
                ``(N, channels, window_samples)`` tensor.
            dtype: Compute dtype; ``torch.bfloat16`` runs under autocast.

        Returns:
            Float32 ``(N, pool_tokens, dim)``.
        """
        device = self.target_encoder.pos_embed.device
        windows = windows_to_tensor(audio, device) if isinstance(audio, np.ndarray) else audio
        with autocast(device, dtype):
            features = self.target_encoder(windows.to(device=device, dtype=torch.float32))
        pooled = functional.adaptive_avg_pool1d(
            features.float().transpose(1, 2), self.config.pool_tokens
        )
        return pooled.transpose(1, 2)


def windows_to_tensor(
    samples: npt.NDArray[np.float32], device: torch.device | str = "cpu"
) -> torch.Tensor:
    """``(frames, channels)`` or ``(N, frames, channels)`` -> float ``(N, channels, frames)``."""
    array = np.asarray(samples, dtype=np.float32)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise ValueError(
            f"audio windows must be (frames, channels) or (N, frames, channels), got {array.shape}"
        )
    return torch.from_numpy(np.ascontiguousarray(array.transpose(0, 2, 1))).to(device)


def build_audio_jepa(preset: str | AudioJepaConfig = "tiny", seed: int = 0) -> AudioJepaEncoder:
    """An :class:`AudioJepaEncoder` with the initial weights of ``seed``, in eval mode.

    Raises:
        KeyError: If ``preset`` names no preset.
    """
    if isinstance(preset, str):
        if preset not in PRESETS:
            raise KeyError(f"unknown audio JEPA preset {preset!r}; presets are {sorted(PRESETS)}")
        preset = PRESETS[preset]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AudioJepaEncoder(preset)
    return model.eval()


def train_step(
    model: AudioJepaEncoder,
    optimizer: torch.optim.Optimizer,
    windows: torch.Tensor,
    generator: torch.Generator,
    momentum: float = 0.996,
) -> float:
    """One gradient step on a batch ``(N, channels, window_samples)``, then the EMA update."""
    model.train()
    masks = sample_audio_masks(model.config.num_patches, len(windows), generator)
    loss = model.loss(windows, masks)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    model.update_target(momentum)
    return float(loss.detach())


class AudioJepaTrainer(TorchTrainer[AudioJepaEncoder]):
    """Trains an :class:`AudioJepaEncoder` on random batches of stored windows.

    Each run takes ``steps_per_run`` AdamW steps, each followed by the EMA update of the target
    encoder with a fixed ``momentum`` (as the image JEPA's trainer: perception never freezes).
    Metric: ``"<name>/loss"``, the mean loss of the run's steps.
    """

    def __init__(
        self,
        buffer_name: str,
        batch_size: int = 16,
        steps_per_run: int = 1,
        learning_rate: float = 5e-4,
        momentum: float = 0.996,
        min_buffer_size: int = 32,
        min_new_samples: int = 8,
        seed: int = 0,
        model_name: str = MODEL_NAME,
    ) -> None:
        """Creates the trainer.

        Raises:
            ValueError: If a number is out of range.
        """
        super().__init__(
            model_name, buffer_name, min_buffer_size, min_new_samples,
            model_name=model_name, model_type=AudioJepaEncoder, seed=seed,
        )  # fmt: skip
        if batch_size < 1 or steps_per_run < 1 or not learning_rate > 0:
            raise ValueError(
                "batch_size and steps_per_run must be at least 1 and learning_rate positive, "
                f"got {batch_size}, {steps_per_run}, {learning_rate}"
            )
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1) (1 freezes perception), got {momentum}")
        self.batch_size = batch_size
        self.steps_per_run = steps_per_run
        self.learning_rate = learning_rate
        self.momentum = momentum

    @override
    def train(
        self, models: Mapping[str, nn.Module], buffers: Mapping[str, DataBuffer]
    ) -> tuple[dict[str, float], tuple[str, ...]]:
        model, optimizer = self._ready()
        windows = buffers[self.buffer_name].get_data()[AUDIO_KEY]
        device = model.target_encoder.pos_embed.device
        losses = []
        for _ in range(self.steps_per_run):
            indices = torch.randint(len(windows), (self.batch_size,), generator=self._generator)
            batch = windows_to_tensor(np.asarray(windows)[indices.numpy()], device)
            losses.append(train_step(model, optimizer, batch, self._generator, self.momentum))
        return {f"{self.name}/loss": float(np.mean(losses))}, (self.model_name,)

    @override
    def make_optimizer(self, model: AudioJepaEncoder) -> torch.optim.Optimizer:
        trained = [p for p in model.parameters() if p.requires_grad]
        return torch.optim.AdamW(trained, lr=self.learning_rate, weight_decay=0.04)
