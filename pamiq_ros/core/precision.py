"""Compute device and precision: what the parameters name, and the one autocast for all.

Every model trainer and the acting minds compute under :func:`autocast`. No ROS import here.
"""

import torch

PRECISIONS: dict[str, torch.dtype | None] = {"float32": None, "bfloat16": torch.bfloat16}
"""Compute precisions by parameter value; None: the parameters' own dtype (float32)."""


def resolve_device(device: str, precision: str) -> tuple[torch.device, torch.dtype | None]:
    """The torch device and compute dtype named by the ``device``/``precision`` parameters.

    Raises:
        ValueError: If the device is unknown or absent, or cannot compute in that precision.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"device {device!r} is not a torch device: {error}") from error
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} asked for, but this machine has no usable CUDA")
        if PRECISIONS[precision] == torch.bfloat16 and not torch.cuda.is_bf16_supported():
            raise ValueError(f"device {device!r} cannot compute in bfloat16")
    elif resolved.type != "cpu":
        raise ValueError(f"device must be cpu or cuda[:N], got {device!r}")
    return resolved, PRECISIONS[precision]


def autocast(device: torch.device, dtype: torch.dtype | None) -> torch.autocast:
    """``torch.autocast`` to ``dtype`` on ``device``; off for None or float32.

    Parameters stay float32, so float32 compute needs no autocast.
    """
    enabled = dtype is not None and dtype != torch.float32
    return torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=enabled)
