import sys, json, numpy as np, torch, dataclasses
from pamiq_ros.bench import curiosity_fast as cf
from pamiq_ros.sim.stepped import SimSteppedWorld
from pamiq_ros.minds import curiosity as mc
torch.set_num_threads(1)
steps=int(sys.argv[1]); seed=int(sys.argv[2]); over=json.loads(sys.argv[3]) if len(sys.argv)>3 else {}
fast={k[5:]:over.pop(k) for k in list(over) if k.startswith('fast_')}
captured={}
orig=cf.build_curiosity_learner
def cap(preset, seed, **k):
    l=orig(preset, seed, training=mc.CuriosityTraining(**over)); captured['l']=l; return l
cf.build_curiosity_learner=cap
settings=cf.FastSettings(steps=steps, eval_points=3, **fast)
world=SimSteppedWorld(10000)
held,_,_=cf.random_walk(world,200,10000,settings); world.close()
res=cf.run_arm("uniform",seed,SimSteppedWorld,settings,held)
l=captured['l']
fd=[t for t in l.trainers if t.name==mc.FORWARD_DYNAMICS][0]
h=fd.health(l.models,l.buffers)
print(json.dumps({"seed":seed,"over":over,"fast":fast,"bench_k1":[e['copy_ratio'][0] for e in res['held_out']],"buf_k1":h.get('forward_dynamics/copy_ratio_h1'),"rank":res['held_out'][-1]['effective_rank'],"s":res['seconds']['total']}))
