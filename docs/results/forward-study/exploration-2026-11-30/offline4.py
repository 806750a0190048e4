import sys, numpy as np, torch, time
from torch import nn
from pamiq_ros.models.forward_dynamics import ForwardDynamics, PRESETS, window_starts, horizon_weights
from pamiq_ros.core.actions import ACTION_SIZES
torch.set_num_threads(1)
K=4
def load(f, ntrain):
    d=np.load(f); n=len(d['obs'])
    tr=window_starts(d['done'],K,ntrain)
    ho=window_starts(d['done'],K,n,begin=n-200)
    return d,tr,ho
def batch(d,starts):
    st=np.arange(K)[None]
    return (torch.tensor(d['state'][starts]),torch.tensor(d['obs'][starts]),torch.tensor(d['action'][starts[:,None]+st]).long(),torch.tensor(d['obs'][starts[:,None]+st+1]))
class Bilinear(nn.Module):
    """delta = sum_d W[d, a_d] LN(o) + b[d, a_d]"""
    def __init__(s, obs_dim, rank=None):
        super().__init__()
        s.ln=nn.LayerNorm(obs_dim, elementwise_affine=False)
        s.W=nn.ParameterList([nn.Parameter(torch.zeros(n,obs_dim,obs_dim)) for n in ACTION_SIZES])
        s.b=nn.ParameterList([nn.Parameter(torch.zeros(n,obs_dim)) for n in ACTION_SIZES])
    def step(s,o,a):
        x=s.ln(o); out=0
        for i,(W,b) in enumerate(zip(s.W,s.b)):
            out=out+torch.einsum('nij,nj->ni',W[a[:,i]],x)+b[a[:,i]]
        return o+out
    def forward(s,state,obs,actions):
        preds=[];o=obs
        for k in range(actions.shape[1]):
            o=s.step(o,actions[:,k]); preds.append(o)
        return torch.stack(preds,1)

class Small(nn.Module):
    def __init__(s, obs_dim, kind, rank=64, e=16):
        super().__init__(); s.kind=kind
        s.ln=nn.LayerNorm(obs_dim, elementwise_affine=False)
        s.bias=nn.ModuleList([nn.Embedding(n,obs_dim) for n in ACTION_SIZES])
        for b in s.bias: nn.init.zeros_(b.weight)
        s.emb=nn.ModuleList([nn.Embedding(n,rank) for n in ACTION_SIZES])
        s.V=nn.Linear(obs_dim,rank); s.U=nn.Linear(rank,obs_dim); nn.init.zeros_(s.U.weight); nn.init.zeros_(s.U.bias)
        s.L=nn.Linear(obs_dim,obs_dim); nn.init.zeros_(s.L.weight); nn.init.zeros_(s.L.bias)
    def step(s,o,a):
        out=sum(b(a[:,i]) for i,b in enumerate(s.bias))
        x=s.ln(o)
        if 'L' in s.kind: out=out+s.L(x)
        if 'F' in s.kind:
            g=sum(e(a[:,i]) for i,e in enumerate(s.emb))
            out=out+s.U(torch.tanh(s.V(x))*g)
        return o+out
    def forward(s,state,obs,actions):
        preds=[];o=obs
        for k in range(actions.shape[1]):
            o=s.step(o,actions[:,k]); preds.append(o)
        return torch.stack(preds,1)

class Combo(ForwardDynamics):
    def __init__(s, sd, obs_dim, rank=64, use_head=True):
        super().__init__(sd, obs_dim, PRESETS['tiny']); s.use_head=use_head
        s.gate_emb=nn.ModuleList([nn.Embedding(n,rank) for n in ACTION_SIZES])
        s.gin=nn.Sequential(nn.LayerNorm(obs_dim, elementwise_affine=False), nn.Linear(obs_dim,rank))
        s.gout=nn.Linear(rank,obs_dim); nn.init.zeros_(s.gout.weight); nn.init.zeros_(s.gout.bias)
    def advance(s, im, actions):
        from pamiq_ros.models.forward_dynamics import Imagination
        embedded = s._embed(actions, (len(im), len(s.action_sizes)))
        cell_in = torch.cat([embedded, s.obs_in(im.obs)], dim=-1)
        state = s.cell(cell_in, im.state)
        g=sum(e(actions[:,i]) for i,e in enumerate(s.gate_emb))
        delta = s.gout(torch.tanh(s.gin(im.obs))*g)
        if s.use_head: delta = delta + s.change(s.head(state))
        return Imagination(state, im.obs + delta)
def evaluate(m,d,starts):
    s,o,a,t=batch(d,starts)
    with torch.no_grad(): p=m(s,o,a)
    me=((p-t)**2).mean((0,2)); ce=((o[:,None]-t)**2).mean((0,2))
    return (me/ce).numpy()
def fit(m,d,tr,steps,lr,wd=0.0,bs=32,seed=0):
    opt=torch.optim.AdamW(m.parameters(),lr=lr,weight_decay=wd) if wd else torch.optim.Adam(m.parameters(),lr=lr)
    g=torch.Generator().manual_seed(seed); w=horizon_weights(K).float()
    for i in range(steps):
        c=tr[torch.randint(len(tr),(bs,),generator=g).numpy()]
        s,o,a,t=batch(d,c); p=m(s,o,a)
        loss=(((p-t)**2).mean((0,2))*w).sum()
        opt.zero_grad(); loss.backward(); opt.step()
    return m

import itertools
for f in sys.argv[1:]:
  full=dict(np.load(f))
  for ntrain in (400,800,1200):
    d={k:v[:ntrain+200] for k,v in full.items()}
    n=ntrain+200
    tr=window_starts(d['done'],K,ntrain); ho=window_starts(d['done'],K,n,begin=n-200)
    obs_dim=d['obs'].shape[1]; sd=d['state'].shape[1]
    for kind,lr,passes,wd in itertools.product(("gru","gate"),(1e-4,3e-4),(4,16,48),(0,)):
        torch.manual_seed(0)
        m=ForwardDynamics(sd,obs_dim,PRESETS['tiny']) if kind=="gru" else Combo(sd,obs_dim)
        if kind=="gru": pass
        steps=max(1,passes*ntrain//32)
        fit(m,d,tr,steps,lr,wd)
        print(f[-10:-4], ntrain, kind, lr, passes, "held", np.round(evaluate(m,d,ho),3), flush=True)
