"""Study patch (not project code): the curiosity reward measured against copying.

Loaded through PYTHONPATH by arm.py's processes when REWARD_PATCH is set:
  REWARD_PATCH=excess: reward = weighted error of the live predictions
                       - weighted error of "nothing changes" (each trajectory's start observation)
  REWARD_PATCH=ratio:  reward = the first over the second (1 when the model only copies)
Everything else is the project's RollingImagination.
"""
import os

mode = os.environ.get("REWARD_PATCH")
if mode:
    import torch
    from pamiq_ros.models import curiosity as reward_module

    Rolling = reward_module.RollingImagination
    original_advance, original_reset = Rolling.advance, Rolling.reset

    def advance(self, model, state, observation, action):
        starts = getattr(self, "_starts", [])
        kept = [s for s, age in zip(starts, self._ages) if age < self.horizon]
        original_advance(self, model, state, observation, action)
        self._starts = [observation.detach().reshape(-1).float()] + kept

    def observe(self, observation):
        if self._live is None:
            return None
        weights = self.weights[[age - 1 for age in self._ages]]
        actual = observation.detach().to(self._live.obs.device, torch.float32)
        model_error = reward_module.weighted_prediction_error(self._live.obs.float(), actual, weights)
        starts = torch.stack(self._starts).reshape(self._live.obs.shape)
        copy_error = reward_module.weighted_prediction_error(starts, actual, weights)
        if mode == "ratio":
            return float(model_error / (copy_error + 1e-12))
        return float(model_error - copy_error)

    def reset(self):
        original_reset(self)
        self._starts = []

    Rolling.advance, Rolling.observe, Rolling.reset = advance, observe, reset
