"""Fast mode with the e2e learning test's training rate: 3 runs per 8 steps (the stack's
3.8 runs/s at 10 Hz), random policy, held-out newest 100 steps; forward settings varied."""
import sys, json, numpy as np, torch
from pamiq_ros.bench import curiosity_fast as cf
from pamiq_ros.sim.stepped import SimSteppedWorld
from pamiq_ros.minds import curiosity as mc
torch.set_num_threads(1)
steps=int(sys.argv[1]); seed=int(sys.argv[2]); over=json.loads(sys.argv[3]) if len(sys.argv)>3 else {}
base={"min_buffer_size":32,"min_new_samples":4,"held_out_steps":100,"forward_steps_per_run":16,"jepa_learning_rate":1e-5,"world_learning_rate":1e-5}
base.update(over); over=base
fast={"train_every":8,"gradient_steps":3}
fast.update({k[5:]:over.pop(k) for k in list(over) if k.startswith('fast_')})
orig=cf.build_curiosity_learner
def cap(preset, seed, **k):
    return orig(preset, seed, training=mc.CuriosityTraining(**over))
cf.build_curiosity_learner=cap
settings=cf.FastSettings(steps=steps, eval_points=11, **fast)
world=SimSteppedWorld(10000)
held,_,_=cf.random_walk(world,200,10000,settings); world.close()
res=cf.run_arm("uniform",seed,SimSteppedWorld,settings,held)
tr=[e.get('trainer_copy_ratio') for e in res['held_out']]
tr=[None if t is None else round(t[0],3) for t in tr]
print(json.dumps({"seed":seed,"over":over,"fast":fast,"walk_k1":[round(e['copy_ratio'][0],3) for e in res['held_out']],"trainer_k1":tr,"s":round(res['seconds']['total'])}), flush=True)
