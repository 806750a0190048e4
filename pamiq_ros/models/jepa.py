"""I-JEPA: a small vision transformer that learns to predict hidden image blocks in latent space.

The image encoder of the curiosity agent (after Assran et al., 2023, "Self-Supervised Learning
from Images with a Joint-Embedding Predictive Architecture"). A camera frame is cut into square
patches. A *context encoder* sees one large block of patches from which several *target blocks*
were removed; a narrow *predictor* takes its tokens plus mask tokens placed at the target
positions and predicts what the *target encoder* (an exponential moving average of the context
encoder, never trained by gradients) outputs there. The loss is the smooth-L1 distance to the
layer-normed target features. Nothing is reconstructed in pixel space, so the features keep
what is predictable about a scene and drop pixel noise.

When acting, :meth:`JepaEncoder.encode` runs the target encoder on the whole frame and pools the
patch features over the patch grid into a few tokens (2x2 = 4 by default).

Frames are stored small and square: :func:`square_frame` centre-crops a frame to a square and
shrinks it to ``image_size`` (area interpolation), so 2000 frames of the tiny preset take 25 MB.
No ROS import here.
"""

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import torch
from torch import nn
from torch.nn import functional
from typing_extensions import override

from pamiq_ros.core.buffers import DataBuffer
from pamiq_ros.core.precision import autocast
from pamiq_ros.core.trainers import TorchTrainer
from pamiq_ros.models.health import effective_rank, feature_spread, linear_cka

MODEL_NAME = "jepa"
"""The name the JEPA's weights are trained, announced and acted with under."""

DEFAULT_EMA_MOMENTUM = 0.996
"""The target encoder's EMA momentum (I-JEPA's starting value, which PAMIQ keeps fixed)."""

FRAME_KEY = "frame"
"""The key of the frames buffer's samples: an ``(image_size, image_size, 3)`` uint8 RGB frame."""


@dataclass(frozen=True)
class JepaConfig:
    """Sizes of a :class:`JepaEncoder`.

    Attributes:
        image_size: Side of the square input image (px); a multiple of ``patch_size``.
        patch_size: Side of a square patch (px).
        dim: Token width of the encoders.
        depth: Transformer blocks of each encoder.
        heads: Attention heads of the encoders (divides ``dim``).
        predictor_dim: Token width of the predictor (narrower than ``dim``).
        predictor_depth: Transformer blocks of the predictor.
        predictor_heads: Attention heads of the predictor (divides ``predictor_dim``).
        mlp_ratio: Width of the blocks' feed-forward layer, as a multiple of the token width.
        pool_size: :meth:`JepaEncoder.encode` pools the patch grid to ``pool_size**2`` tokens.
    """

    image_size: int = 64
    patch_size: int = 8
    dim: int = 96
    depth: int = 4
    heads: int = 4
    predictor_dim: int = 48
    predictor_depth: int = 2
    predictor_heads: int = 4
    mlp_ratio: float = 2.0
    pool_size: int = 2

    def __post_init__(self) -> None:
        positive = {
            "image_size": self.image_size,
            "patch_size": self.patch_size,
            "dim": self.dim,
            "depth": self.depth,
            "heads": self.heads,
            "predictor_dim": self.predictor_dim,
            "predictor_depth": self.predictor_depth,
            "predictor_heads": self.predictor_heads,
            "pool_size": self.pool_size,
        }
        for name, value in positive.items():
            if value < 1:
                raise ValueError(f"JepaConfig.{name} must be at least 1, got {value}")
        if self.image_size % self.patch_size:
            raise ValueError(
                f"JepaConfig.image_size ({self.image_size}) must be a multiple of "
                f"patch_size ({self.patch_size})"
            )
        if self.dim % self.heads or self.predictor_dim % self.predictor_heads:
            raise ValueError(
                f"JepaConfig: heads must divide the width: dim {self.dim} / heads {self.heads}, "
                f"predictor_dim {self.predictor_dim} / predictor_heads {self.predictor_heads}"
            )
        if not self.mlp_ratio > 0:
            raise ValueError(f"JepaConfig.mlp_ratio must be positive, got {self.mlp_ratio}")
        if self.pool_size > self.grid:
            raise ValueError(
                f"JepaConfig.pool_size ({self.pool_size}) exceeds the patch grid ({self.grid})"
            )

    @property
    def grid(self) -> int:
        """Patches per side."""
        return self.image_size // self.patch_size

    @property
    def num_patches(self) -> int:
        """Patches per image."""
        return self.grid**2


PRESETS: dict[str, JepaConfig] = {
    # 698,496 parameters (context encoder 324,000, its EMA copy the same, predictor 50,496):
    # 64x64 frames, 8x8 patches of 8 px. On 2 CPU cores encoding a frame takes about 2 ms and
    # a training step on 32 frames about 85 ms.
    "tiny": JepaConfig(),
    # 7,746,624 parameters (encoders 3,624,000 each, predictor 498,624): 96x96 frames,
    # 12x12 patches of 8 px, ViT-Tiny width. Acts on a CPU; trains at useful speed on a GPU.
    "small": JepaConfig(
        image_size=96,
        patch_size=8,
        dim=192,
        depth=8,
        heads=3,
        predictor_dim=96,
        predictor_depth=4,
        predictor_heads=3,
        mlp_ratio=4.0,
    ),
    # 45,800,448 parameters (encoders 21,466,752 each, predictor 2,866,944): 128x128 frames,
    # 16x16 patches of 8 px, ViT-Small width and depth. GPU only.
    "base": JepaConfig(
        image_size=128,
        patch_size=8,
        dim=384,
        depth=12,
        heads=6,
        predictor_dim=192,
        predictor_depth=6,
        predictor_heads=6,
        mlp_ratio=4.0,
    ),
}
"""Size presets; "tiny" is the default and fits a 2-core CPU next to a 10 Hz agent.

Parameter counts (all of :class:`JepaEncoder`: both encoders and the predictor):
tiny 698,496; small 7,746,624; base 45,800,448.
"""


def count_parameters(module: nn.Module) -> int:
    """Number of parameters (trainable or not) of ``module``."""
    return sum(parameter.numel() for parameter in module.parameters())


# --- frames -----------------------------------------------------------------------------------


def square_frame(frame: npt.NDArray[np.uint8], size: int) -> npt.NDArray[np.uint8]:
    """Centre-crops one ``(H, W, 3)`` uint8 frame to a square and resizes it to ``size``.

    Area interpolation; no copy when the frame already is ``(size, size, 3)``.

    Raises:
        ValueError: If the frame is not a uint8 ``(H, W, 3)`` array or ``size`` is below 1.
    """
    if size < 1:
        raise ValueError(f"size must be at least 1, got {size}")
    if (
        not isinstance(frame, np.ndarray)
        or frame.dtype != np.uint8
        or frame.ndim != 3
        or frame.shape[2] != 3
        or min(frame.shape[:2]) < 1
    ):
        raise ValueError(f"a frame must be a uint8 (H, W, 3) array, got {_describe(frame)}")
    height, width = frame.shape[:2]
    if (height, width) == (size, size):
        return frame
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    crop = np.ascontiguousarray(frame[top : top + side, left : left + side])
    if side == size:
        return crop
    # INTER_AREA averages when shrinking (no aliasing); it falls back to bilinear when growing.
    resized = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
    return np.asarray(resized, dtype=np.uint8)


def frame_to_square(
    frames: npt.NDArray[np.uint8],
    size: int,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Turns RGB frames into model input: float ``(N, 3, size, size)`` in ``[0, 1]``.

    Args:
        frames: uint8 ``(N, H, W, 3)`` or one ``(H, W, 3)`` frame; each is centre-cropped to
            a square and resized (see :func:`square_frame`) unless it already is square at
            ``size``.
        size: Side of the output (px).
        device: Where the tensor goes.
        dtype: Floating dtype of the tensor.

    Raises:
        ValueError: If the frames are not uint8 RGB.
    """
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8:
        raise ValueError(f"frames must be a uint8 array, got {_describe(frames)}")
    batch = frames[np.newaxis] if frames.ndim == 3 else frames
    if batch.ndim != 4 or batch.shape[-1] != 3:
        raise ValueError(f"frames must be (N, H, W, 3) or (H, W, 3), got {frames.shape}")
    if batch.shape[1:3] != (size, size):
        batch = np.stack([square_frame(frame, size) for frame in batch])
    tensor = torch.from_numpy(np.ascontiguousarray(batch)).to(device)
    return tensor.permute(0, 3, 1, 2).to(dtype).div_(255.0)


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.dtype} {value.shape}"
    return type(value).__name__


# --- masks ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JepaMasks:
    """Patch indices (row-major over the patch grid) of a batch's context and target blocks.

    Attributes:
        context: ``(N, K_context)`` long: the patches the context encoder sees, sorted.
        targets: ``(N, n_targets, K_target)`` long: each target block's patches, sorted.
            No target patch is among the context patches of the same image.
    """

    context: torch.Tensor
    targets: torch.Tensor


def sample_masks(
    grid: int | tuple[int, int],
    n_targets: int = 4,
    target_scale: tuple[float, float] = (0.15, 0.2),
    target_aspect: tuple[float, float] = (0.75, 1.5),
    context_scale: tuple[float, float] = (0.85, 1.0),
    generator: torch.Generator | None = None,
    batch_size: int = 1,
) -> JepaMasks:
    """Draws I-JEPA's multi-block masks for a batch of images.

    One target block shape (area a fraction in ``target_scale`` of the grid, height/width
    ratio in ``target_aspect``) is drawn per call, so every target block of the batch has the
    same number of patches; each block is placed uniformly at random (blocks may overlap). The
    context is one square block (fraction in ``context_scale``) with all target patches of its
    image removed. Context sizes then differ between images; every image keeps a random subset
    of the smallest count, so the batch stacks into one tensor.

    Args:
        grid: Patches per side, or ``(rows, columns)``.
        n_targets: Target blocks per image.
        target_scale: Range of a target block's area, as a fraction of the grid.
        target_aspect: Range of a target block's height / width.
        context_scale: Range of the context block's area, as a fraction of the grid.
        generator: The random draws' source (torch's global generator if None).
        batch_size: Images in the batch.

    Raises:
        ValueError: If an argument is out of range.
    """
    rows, columns = (grid, grid) if isinstance(grid, int) else grid
    if rows < 2 or columns < 2:
        raise ValueError(f"the patch grid must be at least 2x2, got {rows}x{columns}")
    if n_targets < 1 or batch_size < 1:
        raise ValueError(
            f"n_targets and batch_size must be at least 1, got {n_targets}, {batch_size}"
        )
    for name, (low, high), upper in (
        ("target_scale", target_scale, 1.0),
        ("context_scale", context_scale, 1.0),
        ("target_aspect", target_aspect, math.inf),
    ):
        if not 0.0 < low <= high <= upper:
            raise ValueError(f"{name} must be an ordered range in (0, {upper}], got {(low, high)}")

    def uniform(low: float, high: float) -> float:
        return low + (high - low) * float(torch.rand((), generator=generator))

    def block_shape(
        scale: tuple[float, float], aspect: tuple[float, float], margin: int
    ) -> tuple[int, int]:
        area = uniform(*scale) * rows * columns
        # Draw the aspect ratio in log space so tall and wide blocks are equally likely.
        ratio = math.exp(uniform(math.log(aspect[0]), math.log(aspect[1])))
        height = round(math.sqrt(area * ratio))
        width = round(math.sqrt(area / ratio))
        return min(max(height, 1), rows - margin), min(max(width, 1), columns - margin)

    def place(height: int, width: int) -> torch.Tensor:
        top = int(torch.randint(rows - height + 1, (), generator=generator))
        left = int(torch.randint(columns - width + 1, (), generator=generator))
        mask = torch.zeros(rows, columns, dtype=torch.bool)
        mask[top : top + height, left : left + width] = True
        return mask.flatten()

    # A target block leaves at least one row and column of the grid to the context.
    target_height, target_width = block_shape(target_scale, target_aspect, margin=1)
    context_height, context_width = block_shape(context_scale, (1.0, 1.0), margin=0)
    targets, contexts = [], []
    for _ in range(batch_size):
        blocks = [place(target_height, target_width) for _ in range(n_targets)]
        covered = torch.stack(blocks).any(dim=0)
        context = place(context_height, context_width) & ~covered
        if not context.any():
            # The targets covered the whole context block: see everything else instead.
            context = ~covered
        targets.append(torch.stack([block.nonzero().squeeze(1) for block in blocks]))
        contexts.append(context.nonzero().squeeze(1))
    keep = min(len(context) for context in contexts)
    kept = []
    for context in contexts:
        choice = torch.randperm(len(context), generator=generator)[:keep]
        kept.append(context[choice.sort().values])
    return JepaMasks(context=torch.stack(kept), targets=torch.stack(targets))


# --- modules ----------------------------------------------------------------------------------


def _gather_tokens(tokens: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """``tokens[n, indices[n, k]]``: ``(N, P, D)`` and ``(N, K)`` -> ``(N, K, D)``."""
    return torch.gather(tokens, 1, indices.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))


def _transformer(dim: int, depth: int, heads: int, mlp_ratio: float) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(
        d_model=dim,
        nhead=heads,
        dim_feedforward=round(dim * mlp_ratio),
        dropout=0.0,
        activation="gelu",
        batch_first=True,
        norm_first=True,
    )
    # Nested tensors only serve padded batches, which never occur here (and warn with norm_first).
    return nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)


class VisionTransformer(nn.Module):
    """Patch embedding, learned positional embedding, pre-norm transformer blocks, final norm.

    Attributes:
        config: The sizes.
    """

    def __init__(self, config: JepaConfig) -> None:
        """Creates the encoder with fresh weights (from torch's global generator)."""
        super().__init__()
        self.config = config
        self.patch_embed = nn.Conv2d(
            3, config.dim, kernel_size=config.patch_size, stride=config.patch_size
        )
        self.pos_embed = nn.Parameter(torch.zeros(1, config.num_patches, config.dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.blocks = _transformer(config.dim, config.depth, config.heads, config.mlp_ratio)
        self.norm = nn.LayerNorm(config.dim)

    @override
    def forward(self, images: torch.Tensor, indices: torch.Tensor | None = None) -> torch.Tensor:
        """Encodes images, or only some of their patches.

        Args:
            images: Float ``(N, 3, image_size, image_size)``.
            indices: Long ``(N, K)``: the patches to keep (row-major); all patches if None.

        Returns:
            ``(N, K, dim)`` features (``K = num_patches`` when ``indices`` is None).

        Raises:
            ValueError: If the images do not have the configured shape.
        """
        size = self.config.image_size
        if images.ndim != 4 or tuple(images.shape[1:]) != (3, size, size):
            raise ValueError(f"images must be (N, 3, {size}, {size}), got {tuple(images.shape)}")
        tokens = self.patch_embed(images).flatten(2).transpose(1, 2) + self.pos_embed
        if indices is not None:
            tokens = _gather_tokens(tokens, indices)
        return self.norm(self.blocks(tokens))


class JepaPredictor(nn.Module):
    """Predicts target-encoder features at target positions from context-encoder features.

    Context tokens are projected to the narrower ``predictor_dim``; a learned mask token plus
    the positional embedding of each target patch stands for the patches to predict. Both pass
    through the blocks together; the mask tokens' outputs are projected back to ``dim``.
    """

    def __init__(self, config: JepaConfig) -> None:
        """Creates the predictor with fresh weights (from torch's global generator)."""
        super().__init__()
        self.config = config
        self.embed = nn.Linear(config.dim, config.predictor_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, config.predictor_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, config.num_patches, config.predictor_dim))
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.blocks = _transformer(
            config.predictor_dim, config.predictor_depth, config.predictor_heads, config.mlp_ratio
        )
        self.norm = nn.LayerNorm(config.predictor_dim)
        self.project = nn.Linear(config.predictor_dim, config.dim)

    @override
    def forward(
        self,
        context_tokens: torch.Tensor,
        context_indices: torch.Tensor,
        target_indices: torch.Tensor,
    ) -> torch.Tensor:
        """Predicts the features of the target patches.

        Args:
            context_tokens: ``(N, K_context, dim)`` context-encoder output.
            context_indices: ``(N, K_context)`` long: where those tokens sit in the grid.
            target_indices: ``(N, K_target)`` long: the patches to predict.

        Returns:
            ``(N, K_target, dim)`` predicted features.
        """
        batch = context_tokens.shape[0]
        position = self.pos_embed.expand(batch, -1, -1)
        context = self.embed(context_tokens) + _gather_tokens(position, context_indices)
        masked = self.mask_token + _gather_tokens(position, target_indices)
        tokens = self.blocks(torch.cat([context, masked], dim=1))
        return self.project(self.norm(tokens[:, context.shape[1] :]))


class JepaEncoder(nn.Module):
    """The whole I-JEPA: context encoder, its EMA copy (the target encoder) and the predictor.

    The target encoder takes no gradients; :meth:`update_target` moves it towards the context
    encoder. Its weights are part of the state dict, so the acting copy that receives the
    trained weights encodes with them.

    Attributes:
        config: The sizes.
        context_encoder: The trained :class:`VisionTransformer`.
        target_encoder: Its exponential moving average; encodes frames when acting.
        predictor: The :class:`JepaPredictor`.
    """

    def __init__(
        self, config: JepaConfig | None = None, device: torch.device | str = "cpu"
    ) -> None:
        """Creates the model with fresh weights (from torch's global generator) on ``device``.

        Args:
            config: The sizes; default the "tiny" preset.
            device: Where the parameters live (kept float32; see ``dtype`` of :meth:`encode`
                and :class:`JepaTrainer` for bfloat16 compute).
        """
        super().__init__()
        self.config = config or PRESETS["tiny"]
        self.context_encoder = VisionTransformer(self.config)
        self.target_encoder = copy.deepcopy(self.context_encoder)
        self.target_encoder.requires_grad_(False)
        self.predictor = JepaPredictor(self.config)
        self.to(device)

    @property
    def num_tokens(self) -> int:
        """Tokens per frame that :meth:`encode` returns."""
        return self.config.pool_size**2

    def loss(self, images: torch.Tensor, masks: JepaMasks) -> torch.Tensor:
        """I-JEPA's loss: smooth-L1 between predicted and layer-normed target features.

        Args:
            images: Float ``(N, 3, image_size, image_size)``.
            masks: From :func:`sample_masks` with ``batch_size=N`` and this config's grid.

        Returns:
            The scalar loss, averaged over target blocks, patches and features.
        """
        context_indices = masks.context.to(images.device)
        target_indices = masks.targets.to(images.device)
        n_targets = target_indices.shape[1]
        with torch.no_grad():
            features = self.target_encoder(images)
            features = functional.layer_norm(features, features.shape[-1:])
        # One predictor pass per target block, all blocks of the batch side by side.
        blocks = target_indices.flatten(0, 1)
        targets = _gather_tokens(features.repeat_interleave(n_targets, 0), blocks)
        context = self.context_encoder(images, context_indices)
        predicted = self.predictor(
            context.repeat_interleave(n_targets, 0),
            context_indices.repeat_interleave(n_targets, 0),
            blocks,
        )
        return functional.smooth_l1_loss(predicted.float(), targets.float())

    @torch.no_grad()
    def update_target(self, momentum: float) -> None:
        """Moves the target encoder: ``target = momentum * target + (1 - momentum) * context``.

        Raises:
            ValueError: If ``momentum`` is not in ``[0, 1]``.
        """
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {momentum}")
        for target, context in zip(
            self.target_encoder.parameters(), self.context_encoder.parameters(), strict=True
        ):
            target.lerp_(context, 1.0 - momentum)

    def encode(
        self, frames: npt.NDArray[np.uint8] | torch.Tensor, dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        """Target-encoder features of frames, pooled over the patch grid.

        Call it under ``torch.inference_mode()`` (or ``no_grad``) when acting.

        Args:
            frames: uint8 ``(N, H, W, 3)`` / ``(H, W, 3)`` RGB frames (cropped and resized,
                see :func:`frame_to_square`), or float ``(N, 3, image_size, image_size)``
                in ``[0, 1]``.
            dtype: Compute dtype; ``torch.bfloat16`` runs under autocast; default float32.

        Returns:
            Float32 ``(N, pool_size**2, dim)``: the patch features averaged over
            ``pool_size x pool_size`` regions of the grid, row-major.

        Raises:
            ValueError: If the frames have the wrong dtype or shape.
        """
        device = self.target_encoder.pos_embed.device
        if isinstance(frames, np.ndarray):
            images = frame_to_square(frames, self.config.image_size, device)
        else:
            images = frames.to(device=device, dtype=torch.float32)
        with autocast(device, dtype):
            features = self.target_encoder(images)
        grid = self.config.grid
        spatial = features.float().transpose(1, 2).reshape(len(images), -1, grid, grid)
        pooled = functional.adaptive_avg_pool2d(spatial, self.config.pool_size)
        return pooled.flatten(2).transpose(1, 2)


def build_jepa(
    preset: str | JepaConfig = "tiny", seed: int = 0, device: torch.device | str = "cpu"
) -> JepaEncoder:
    """A :class:`JepaEncoder` with the initial weights of ``seed``, in eval mode.

    Torch's global generator is left as it was, so the same seed always gives the same
    weights (the acting copy and the learner's copy start equal).

    Raises:
        KeyError: If ``preset`` names no preset.
    """
    if isinstance(preset, str):
        if preset not in PRESETS:
            raise KeyError(f"unknown JEPA preset {preset!r}; presets are {sorted(PRESETS)}")
        preset = PRESETS[preset]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = JepaEncoder(preset)
    return model.to(device).eval()


def check_ema_momentum(momentum: float) -> None:
    """Refuses (ValueError) an EMA momentum outside ``[0, 1)``.

    At 1 the target encoder, through which the agent perceives, would never change again.
    """
    if isinstance(momentum, bool) or not 0.0 <= momentum < 1.0:
        raise ValueError(
            f"the EMA momentum must be in [0, 1) (1 freezes the target encoder), got {momentum!r}"
        )


# --- trainer ----------------------------------------------------------------------------------


class JepaTrainer(TorchTrainer[JepaEncoder]):
    """Trains a :class:`JepaEncoder` on random batches of stored square frames.

    Each run takes ``steps_per_run`` AdamW steps (no weight decay on biases, norms and
    embeddings' 1-D parameters), each followed by an EMA update of the target encoder with a
    fixed ``momentum`` (0.996, as PAMIQ). I-JEPA's schedule raises the momentum to 1.0 over a
    finite training run, which freezes the target encoder for good; the agent perceives
    through the target encoder and never stops learning, so the momentum stays below 1. Batch
    and mask draws come from a generator of its own, saved with the optimizer and the step
    count, so a resumed run continues the same sequence.
    Metric: ``"<name>/loss"``, the mean loss of the run's steps.

    Health (:meth:`health`), on the first ``reference_frames`` frames it trained on, kept aside
    with the features the target encoder gave them then: the features' spread and effective
    rank now (a collapsing encoder drives both down), and drift: linear CKA to the features at
    the start and at the last measurement, and the features' distance from the start ones
    relative to their size.
    """

    def __init__(
        self,
        model_name: str = MODEL_NAME,
        buffer_name: str = "frames",
        batch_size: int = 32,
        steps_per_run: int = 1,
        learning_rate: float = 5e-4,
        weight_decay: float = 0.04,
        momentum: float = DEFAULT_EMA_MOMENTUM,
        n_targets: int = 4,
        target_scale: tuple[float, float] = (0.15, 0.2),
        target_aspect: tuple[float, float] = (0.75, 1.5),
        context_scale: tuple[float, float] = (0.85, 1.0),
        min_buffer_size: int = 64,
        min_new_samples: int = 8,
        reference_frames: int = 64,
        seed: int = 0,
        dtype: torch.dtype = torch.float32,
        name: str | None = None,
    ) -> None:
        """Creates the trainer.

        Args:
            model_name: The model it trains.
            buffer_name: The frames buffer (samples with key ``"frame"``, uint8 squares of the
                model's ``image_size``; other sizes are cropped and resized at each step).
            batch_size: Frames per step.
            steps_per_run: Optimizer steps per run.
            learning_rate: AdamW's learning rate.
            weight_decay: AdamW's weight decay (matrices only).
            momentum: EMA momentum of the target encoder, in ``[0, 1)``: each step
                ``target = momentum * target + (1 - momentum) * context``.
            n_targets: Target blocks per image (see :func:`sample_masks`).
            target_scale: Target block area range (fraction of the grid).
            target_aspect: Target block height / width range.
            context_scale: Context block area range (fraction of the grid).
            min_buffer_size: Frames the buffer must hold before the first run.
            min_new_samples: Frames that must arrive between runs.
            reference_frames: Frames kept aside for the health figures (at least 2).
            seed: Seed of the batch and mask draws.
            dtype: Compute dtype; ``torch.bfloat16`` trains under autocast (weights stay
                float32). The device is the model's.
            name: The trainer's name; default ``model_name``.

        Raises:
            ValueError: If a number is out of range.
        """
        super().__init__(
            name or model_name, buffer_name, min_buffer_size, min_new_samples,
            model_name=model_name, model_type=JepaEncoder, seed=seed,
        )  # fmt: skip
        if batch_size < 1 or steps_per_run < 1:
            raise ValueError(
                f"batch_size and steps_per_run must be at least 1, got {batch_size}, "
                f"{steps_per_run}"
            )
        if not learning_rate > 0 or weight_decay < 0:
            raise ValueError(
                f"learning_rate must be positive and weight_decay not negative, "
                f"got {learning_rate}, {weight_decay}"
            )
        check_ema_momentum(momentum)
        if reference_frames < 2:
            raise ValueError(f"reference_frames must be at least 2, got {reference_frames}")
        self.batch_size = batch_size
        self.steps_per_run = steps_per_run
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.momentum = momentum
        self.reference_frames = reference_frames
        # The first frames trained on, their features then, and at the last health check.
        self._reference: torch.Tensor | None = None
        self._reference_features: torch.Tensor | None = None
        self._last_features: torch.Tensor | None = None
        self.mask_options: dict[str, Any] = {
            "n_targets": n_targets,
            "target_scale": target_scale,
            "target_aspect": target_aspect,
            "context_scale": context_scale,
        }
        self.dtype = dtype
        self._steps = 0

    @property
    def steps(self) -> int:
        """Optimizer steps taken (restored from a checkpoint on load)."""
        return self._steps

    @override
    def train(
        self, models: Mapping[str, nn.Module], buffers: Mapping[str, DataBuffer]
    ) -> tuple[dict[str, float], tuple[str, ...]]:
        model, optimizer = self._ready()
        frames = buffers[self.buffer_name].get_data()[FRAME_KEY]
        device = model.target_encoder.pos_embed.device
        config = model.config
        if self._reference is None:
            self._keep_reference(model, frames)
        model.train()
        losses = []
        for _ in range(self.steps_per_run):
            indices = torch.randint(len(frames), (self.batch_size,), generator=self._generator)
            images = frame_to_square(frames[indices.numpy()], config.image_size, device)
            masks = sample_masks(
                config.grid,
                generator=self._generator,
                batch_size=self.batch_size,
                **self.mask_options,
            )
            with autocast(device, self.dtype):
                loss = model.loss(images, masks)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            model.update_target(self.momentum)
            self._steps += 1
            losses.append(float(loss.detach()))
        return {f"{self.name}/loss": float(np.mean(losses))}, (self.model_name,)

    def _keep_reference(self, model: JepaEncoder, frames: npt.NDArray[np.uint8]) -> None:
        squares = [square_frame(frame, model.config.image_size) for frame in frames]
        reference = torch.from_numpy(np.stack(squares[: self.reference_frames]))
        self._reference = reference
        self._reference_features = self._features(model, reference)

    @staticmethod
    def _features(model: JepaEncoder, frames: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model.encode(frames.numpy()).flatten(1).cpu()

    @override
    def health(
        self, models: Mapping[str, nn.Module], buffers: Mapping[str, DataBuffer]
    ) -> dict[str, float]:
        if self._reference is None or self._reference_features is None:
            return {}  # nothing trained on yet
        model, _ = self._ready()
        features = self._features(model, self._reference)
        start = self._reference_features
        distance = (features - start).norm(dim=1).mean() / start.norm(dim=1).mean().clamp_min(1e-12)
        figures = {
            f"{self.name}/feature_spread": feature_spread(features),
            f"{self.name}/effective_rank": effective_rank(features),
            f"{self.name}/cka_to_start": linear_cka(features, start),
            f"{self.name}/drift_from_start": float(distance),
        }
        if self._last_features is not None:
            figures[f"{self.name}/cka_to_last"] = linear_cka(features, self._last_features)
        self._last_features = features
        return figures

    @override
    def extra_state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {**super().extra_state_dict(), "steps": self._steps}
        if self._reference is not None and self._reference_features is not None:
            state["reference_frames"] = self._reference.clone()
            state["reference_features"] = self._reference_features.clone()
        return state

    @override
    def load_extra_state_dict(self, state: Any) -> None:
        if not isinstance(state, Mapping) or "steps" not in state:
            raise ValueError(f"trainer {self.name!r}: state needs 'steps'")
        steps = state["steps"]
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ValueError(f"trainer {self.name!r}: step count {steps!r} is not usable")
        reference = state.get("reference_frames")
        features = state.get("reference_features")
        usable = (
            isinstance(reference, torch.Tensor)
            and reference.dtype == torch.uint8
            and reference.ndim == 4
            and isinstance(features, torch.Tensor)
            and features.ndim == 2
            and len(features) == len(reference)
            and bool(torch.isfinite(features).all())
        )
        if (reference is not None or features is not None) and not usable:
            raise ValueError(f"trainer {self.name!r}: reference frames are not usable")
        super().load_extra_state_dict(state)
        self._steps = steps
        self._reference, self._reference_features = reference, features
        self._last_features = None

    @override
    def make_optimizer(self, model: JepaEncoder) -> torch.optim.Optimizer:
        # Biases, norms, positional embeddings and the mask token are not decayed.
        decayed: list[nn.Parameter] = []
        plain: list[nn.Parameter] = []
        for module in (model.context_encoder, model.predictor):
            for name, parameter in module.named_parameters():
                embedding = name.endswith(("pos_embed", "mask_token"))
                (plain if parameter.ndim <= 1 or embedding else decayed).append(parameter)
        return torch.optim.AdamW(
            [
                {"params": decayed, "weight_decay": self.weight_decay},
                {"params": plain, "weight_decay": 0.0},
            ],
            lr=self.learning_rate,
        )
