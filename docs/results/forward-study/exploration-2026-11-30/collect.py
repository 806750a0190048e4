import sys, json, numpy as np, torch
from pamiq_ros.bench import curiosity_fast as cf
from pamiq_ros.sim.stepped import SimSteppedWorld
from pamiq_ros.minds import curiosity as mc
torch.set_num_threads(1)
steps=int(sys.argv[1]); seed=int(sys.argv[2]); over=json.loads(sys.argv[3]); out=sys.argv[4]
captured={}
orig=cf.build_curiosity_learner
def cap(preset, seed, **k):
    l=orig(preset, seed, training=mc.CuriosityTraining(**over)); captured['l']=l; return l
cf.build_curiosity_learner=cap
settings=cf.FastSettings(steps=steps, eval_points=2)
world=SimSteppedWorld(10000)
held,_,_=cf.random_walk(world,200,10000,settings); world.close()
res=cf.run_arm("uniform",seed,SimSteppedWorld,settings,held)
l=captured['l']
d=l.buffers[mc.FORWARD_DYNAMICS_BUFFER].get_data()
np.savez(out, **{k:np.asarray(v) for k,v in d.items()})
print(res['held_out'][-1]['copy_ratio'][0])
