"""One curiosity arm of the fast benchmark with CuriosityTraining overrides (and ppo: {...});
prints one JSON line. Usage: arm.py STEPS SEED OVERRIDES_JSON"""
import dataclasses, json, sys
import torch
from pamiq_ros.bench import curiosity_fast as cf
from pamiq_ros.sim.stepped import SimSteppedWorld
from pamiq_ros.minds import curiosity as mc
torch.set_num_threads(1)
steps, seed, over = int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
ppo = over.pop("ppo", {})
training = mc.CuriosityTraining(**over)
if ppo:
    training = dataclasses.replace(training, ppo_config=dataclasses.replace(training.ppo_config, **ppo))
original = cf.build_curiosity_learner
cf.build_curiosity_learner = lambda preset, seed, **k: original(preset, seed, training=training)
settings = cf.FastSettings(steps=steps)
world = SimSteppedWorld(10000)
held, _, _ = cf.random_walk(world, 200, 10000, settings)
world.close()
res = cf.run_arm("curiosity", seed, SimSteppedWorld, settings, held)
print(json.dumps({"seed": seed, "over": sys.argv[3], "cells": res["cells_visited"],
                  "walk_k1": round(res["held_out"][-1]["copy_ratio"][0], 3),
                  "action_frequencies": res["action_frequencies"]}), flush=True)
