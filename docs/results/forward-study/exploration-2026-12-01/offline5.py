import sys, numpy as np, torch, time
exec(open('offline3.py').read().split("for f in sys.argv[1:]:")[0])
def ens_eval(ms,d,starts):
    s,o,a,t=batch(d,starts)
    with torch.no_grad(): p=torch.stack([m(s,o,a) for m in ms]).mean(0)
    me=((p-t)**2).mean((0,2)); ce=((o[:,None]-t)**2).mean((0,2))
    return (me/ce).numpy()
for f in sys.argv[1:]:
  for ntrain in (1000,1800):
    d,tr,ho=load(f,ntrain)
    ho=window_starts(d['done'],K,ntrain+200,begin=ntrain)  # the 200 steps right after training
    obs_dim=d['obs'].shape[1]; sd=d['state'].shape[1]
    ms=[]
    for seed in range(5):
        torch.manual_seed(seed); m=fit(ForwardDynamics(sd,obs_dim,PRESETS['tiny']),d,tr,int(sys.argv[0:1] and 1500),1e-4,seed=seed); ms.append(m)
        print(f,ntrain,"member",seed,"held k1",round(float(evaluate(m,d,ho)[0]),3),"ens",seed+1,round(float(ens_eval(ms,d,ho)[0]),3),flush=True)
