"""Curiosity arm, 6000 steps: only the JEPA frame buffer enlarged (random replacement, 12 h survival)."""
import sys, json, torch
from pamiq_ros.bench import curiosity_fast as cf
from pamiq_ros.sim.stepped import SimSteppedWorld
from pamiq_ros.minds import curiosity as mc
from pamiq_ros.models import jepa
torch.set_num_threads(1)
steps=int(sys.argv[1]); seed=int(sys.argv[2]); size=int(sys.argv[3])
Orig=mc.RandomReplacementBuffer
def Rand(k, n, *a, **kw):
    return Orig(k, size if list(k) == [jepa.FRAME_KEY] else n, *a, **kw)
mc.RandomReplacementBuffer=Rand
settings=cf.FastSettings(steps=steps, eval_points=7)
world=SimSteppedWorld(10000)
held,_,_=cf.random_walk(world,200,10000,settings); world.close()
res=cf.run_arm("curiosity",seed,SimSteppedWorld,settings,held)
print(json.dumps({"seed":seed,"size":size,"which":"frames","walk_k1":[round(e['copy_ratio'][0],3) for e in res['held_out']],"trainer_k1":[None if e.get('trainer_copy_ratio') is None else round(e['trainer_copy_ratio'][0],3) for e in res['held_out']],"s":round(res['seconds']['total'])}), flush=True)
