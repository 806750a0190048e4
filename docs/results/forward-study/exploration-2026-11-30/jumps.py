import sys, numpy as np, torch
from pamiq_ros.bench import curiosity_fast as cf
from pamiq_ros.sim.stepped import SimSteppedWorld
from pamiq_ros.minds.curiosity import FORWARD_DYNAMICS_BUFFER, build_curiosity_learner
torch.set_num_threads(1)
steps=int(sys.argv[1]); sync=int(sys.argv[2])
captured={}
orig=cf.build_curiosity_learner
def cap(*a,**k):
    l=orig(*a,**k); captured['l']=l; return l
cf.build_curiosity_learner=cap
settings=cf.FastSettings(steps=steps, sync_every=sync, eval_points=2)
world=SimSteppedWorld(10000)
held,_,_=cf.random_walk(world,200,10000,settings); world.close()
res=cf.run_arm("uniform",0,SimSteppedWorld,settings,held)
l=captured['l']
d=l.buffers[FORWARD_DYNAMICS_BUFFER].get_data()
obs=d['obs']; done=d['done']
ch=((obs[1:]-obs[:-1])**2).mean(1)
ok=done[:-1]<0.5
idx=np.arange(len(ch))
print("n",len(obs),"var of obs",obs.var(0).mean(), "mean change",ch[ok].mean())
phase=np.array([ch[(idx%sync==p)&ok].mean() for p in range(sync)])
top=np.argsort(phase)[::-1][:4]
print("phase means top", [(int(p),float(phase[p])) for p in top], "median", float(np.median(phase)))
print("held_out", res['held_out'][-1])
