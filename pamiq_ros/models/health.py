"""Health figures of a learning mind, ROS-free: encoder collapse, prediction against copying.

Shared by the trainer (TensorBoard, ``/diagnostics``, ``pamiq-ros status``) and the curiosity
benchmarks, so a figure means the same wherever it is read.

* :func:`feature_spread` and :func:`effective_rank`: a collapsing encoder maps every input to
  nearly the same point (spread falls to 0) or onto a few directions (rank falls to 1).
* :func:`copy_ratio`: the forward model's error at horizon ``k`` divided by the error of
  predicting "nothing changes" (``o_{t+k} = o_t``). Below 1 the model predicts; above 1 its
  error measures its own underfitting more than the world's surprise.
* :func:`linear_cka`: how similar two sets of features of the same inputs are (1 = the same up
  to rotation and scale): encoder drift against a snapshot.
"""

import torch


def _as_matrix(features: torch.Tensor) -> torch.Tensor:
    """Flattens ``(N, ...)`` features to ``(N, D)`` float64."""
    if features.ndim < 2 or features.shape[0] < 2:
        raise ValueError(f"need at least 2 samples of features, got shape {tuple(features.shape)}")
    return features.detach().reshape(features.shape[0], -1).to(torch.float64)


def feature_spread(features: torch.Tensor) -> float:
    """Mean over feature dimensions of the standard deviation across samples.

    Args:
        features: ``(N, ...)`` features of N inputs (N >= 2).
    """
    return float(_as_matrix(features).std(dim=0).mean())


def effective_rank(features: torch.Tensor) -> float:
    """Effective rank (Roy and Vetterli 2007) of the centred features.

    ``exp`` of the entropy of the normalised singular values: 1 when all samples lie on one
    line, up to ``min(N, D)`` when variance is spread evenly.

    Args:
        features: ``(N, ...)`` features of N inputs (N >= 2).
    """
    matrix = _as_matrix(features)
    centred = matrix - matrix.mean(dim=0, keepdim=True)
    singular = torch.linalg.svdvals(centred)
    total = singular.sum()
    if not total > 0:
        return 0.0
    p = singular / total
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def copy_ratio(
    predicted: torch.Tensor, target: torch.Tensor, current: torch.Tensor, eps: float = 1e-12
) -> torch.Tensor:
    """Per-horizon forward-model error over the copy baseline's error.

    Args:
        predicted: ``(B, K, D)`` predictions of the observation 1..K steps ahead.
        target: ``(B, K, D)`` the observations that came.
        current: ``(B, D)`` the observation the predictions were made from.
        eps: Guards the division where the world did not change at all.

    Returns:
        ``(K,)``: ``mse(predicted, target) / mse(current, target)`` per horizon.
    """
    if predicted.shape != target.shape or predicted.ndim != 3:
        raise ValueError(
            f"predicted and target must both be (B, K, D), got {tuple(predicted.shape)} "
            f"and {tuple(target.shape)}"
        )
    if current.shape != (target.shape[0], target.shape[2]):
        raise ValueError(
            f"current must be (B, D) = {(target.shape[0], target.shape[2])}, "
            f"got {tuple(current.shape)}"
        )
    model_error = (predicted.detach() - target.detach()).pow(2).mean(dim=(0, 2))
    copy_error = (current.detach().unsqueeze(1) - target.detach()).pow(2).mean(dim=(0, 2))
    return model_error / copy_error.clamp_min(eps)


def linear_cka(first: torch.Tensor, second: torch.Tensor) -> float:
    """Linear centred kernel alignment (Kornblith et al. 2019) of two feature sets.

    Args:
        first: ``(N, ...)`` features of N inputs.
        second: ``(N, ...)`` other features of the same N inputs (any width).

    Returns:
        A similarity in [0, 1]; 1 when the two are the same up to rotation and isotropic scale.
    """
    x = _as_matrix(first)
    y = _as_matrix(second)
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"both feature sets need the same inputs, got {x.shape[0]} and {y.shape[0]}"
        )
    x = x - x.mean(dim=0, keepdim=True)
    y = y - y.mean(dim=0, keepdim=True)
    cross = torch.linalg.matrix_norm(y.T @ x) ** 2
    norm = torch.linalg.matrix_norm(x.T @ x) * torch.linalg.matrix_norm(y.T @ y)
    if not norm > 0:
        return 0.0
    return float(cross / norm)
