import sys, numpy as np, torch, time
exec(open('offline3.py').read().split("for f in sys.argv[1:]:")[0])
BLOCK=int(sys.argv[1]); PERIOD=int(sys.argv[2])
for f in sys.argv[3:]:
  for ntrain in (600,1000,1800):
    d=np.load(f); n=len(d['obs'])
    allw=window_starts(d['done'],K,ntrain)
    idx=np.arange(ntrain+K+1)
    held_mask=((idx//BLOCK)%(PERIOD//BLOCK))==(PERIOD//BLOCK)//2
    # a window t uses steps t..t+K; it is held out if it starts in a block, trained if it touches none
    touches=np.array([held_mask[t:t+K+1].any() for t in allw])
    starts_in=held_mask[allw]
    tr=allw[~touches]; ho=allw[starts_in & np.array([held_mask[t:t+K+1].all() for t in allw])]
    newest=window_starts(d['done'],K,ntrain,begin=ntrain-100)
    obs_dim=d['obs'].shape[1]; sd=d['state'].shape[1]
    for seed in range(2):
        torch.manual_seed(seed); m=fit(ForwardDynamics(sd,obs_dim,PRESETS['tiny']),d,tr,ntrain,1e-4,seed=seed)
        print(f,ntrain,"seed",seed,"train",len(tr),"held",len(ho),"interleaved k1",round(float(evaluate(m,d,ho)[0]),3),"train k1",round(float(evaluate(m,d,tr[-300:])[0]),3),flush=True)
