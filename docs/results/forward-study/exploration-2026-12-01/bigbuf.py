"""One curiosity arm of the fast benchmark with CuriosityTraining overrides; prints one JSON line.

Usage: bigbuf.py STEPS SEED OVERRIDES_JSON [EVAL_POINTS (default 7)]
"""
import sys, json, torch
from pamiq_ros.bench import curiosity_fast as cf
from pamiq_ros.sim.stepped import SimSteppedWorld
from pamiq_ros.minds import curiosity as mc
torch.set_num_threads(1)
steps=int(sys.argv[1]); seed=int(sys.argv[2]); over=json.loads(sys.argv[3])
orig=cf.build_curiosity_learner
def cap(preset, seed, **k):
    return orig(preset, seed, training=mc.CuriosityTraining(**over))
cf.build_curiosity_learner=cap
eval_points=int(sys.argv[4]) if len(sys.argv) > 4 else 7
settings=cf.FastSettings(steps=steps, eval_points=eval_points)
world=SimSteppedWorld(10000)
held,_,_=cf.random_walk(world,200,10000,settings); world.close()
res=cf.run_arm("curiosity",seed,SimSteppedWorld,settings,held)
print(json.dumps({"seed":seed,"over":over,"walk_k1":[round(e['copy_ratio'][0],3) for e in res['held_out']],"trainer_k1":[None if e.get('trainer_copy_ratio') is None else round(e['trainer_copy_ratio'][0],3) for e in res['held_out']],"rank":[round(e['effective_rank'],1) for e in res['held_out']],"cells":res.get('cells', None) if not isinstance(res.get('cells'),list) else res['cells'][-1]}))
