"""Runs the item-4 test's stack (random policy, slow encoders) for a while; keeps its run folder."""
import os, subprocess, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[4]))  # the repository
from test.support.configs import config_for_test, launch_command
from test.e2e.test_curiosity import LEARNING_TRAINER, LEARNING_AGENT
out = Path(sys.argv[1]); seconds = sys.argv[2]; world_seed = int(sys.argv[3]) if len(sys.argv) > 3 else 0
out.mkdir(parents=True, exist_ok=True)
config = config_for_test("sim", out, 47011, 47012, {"trainer": {**LEARNING_TRAINER, "checkpoint_period": 30.0}, "agent": LEARNING_AGENT, "sim_world": {"seed": world_seed}})
env = dict(os.environ, ROS_DOMAIN_ID="77", ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
subprocess.run(launch_command(config, "--duration", seconds), env=env, check=False)
