"""Small Gymnasium environments for the tests, registered when this module is imported.

``PamiqTest/Raising-v0`` is a corridor whose step raises on a chosen step of each episode, to
check that a world that raises is reset and logged, not fatal. A node process imports it
through the id ``test.support.gym_envs:PamiqTest/Raising-v0`` (Gymnasium's ``module:Id``),
run from the repository root.
"""

from typing import Any

import gymnasium as gym
import numpy as np

RAISING_ID = "PamiqTest/Raising-v0"
RAISING_MODULE_ID = f"test.support.gym_envs:{RAISING_ID}"
RAISING_MESSAGE = "the test environment broke on purpose"


class RaisingCorridor(gym.Env[np.ndarray, np.int64]):
    """A 10-cell corridor seen as a 16x16 grey image; action 1 walks, 0 stands.

    ``step`` raises ``RuntimeError`` on step ``raise_at`` of every episode (0: never), and gives
    a float array instead of an image on step ``garble_at`` (0: never); reaching the last cell
    ends the episode with reward 1.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, raise_at: int = 3, garble_at: int = 0) -> None:
        self.observation_space = gym.spaces.Box(0, 255, (16, 16), np.uint8)
        self.action_space = gym.spaces.Discrete(2)
        self.raise_at = raise_at
        self.garble_at = garble_at
        self._cell = 0
        self._steps = 0

    def _observe(self) -> np.ndarray:
        return np.full((16, 16), 20 * self._cell, np.uint8)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._cell, self._steps = 0, 0
        return self._observe(), {}

    def step(self, action: np.int64) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self._steps += 1
        if self._steps == self.raise_at:
            raise RuntimeError(RAISING_MESSAGE)
        self._cell += int(action)
        done = self._cell >= 9
        observation = self._observe()
        if self._steps == self.garble_at:
            observation = observation.astype(np.float64)
        return observation, 1.0 if done else 0.0, done, False, {}


if RAISING_ID not in gym.registry:
    gym.register(RAISING_ID, entry_point=f"{__name__}:RaisingCorridor")
