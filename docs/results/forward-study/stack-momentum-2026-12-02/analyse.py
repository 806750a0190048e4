"""Ridge regression of the observation change o_{t+1}-o_t on the action at t and at t-1.

Reads the forward model's buffer from a trainer checkpoint. Held-out: the last 25 % of steps.
Figure: error over the copy error (held-out), as the trainer measures it."""
import sys, glob, json
import numpy as np
from pamiq_ros.core.actions import ACTION_SIZES

path = sorted(glob.glob(sys.argv[1] + "/runs/*/trainer/checkpoints/0*/buffers/forward_dynamics/data.npz"))[-1]
data = np.load(path)
obs, act, done = data["key_2"], data["key_1"].astype(int), data["key_3"]
print(path, obs.shape, act.shape, "dones", int(done.sum()))

def onehot(a):
    return np.concatenate([np.eye(s)[a[:, i]] for i, s in enumerate(ACTION_SIZES)], axis=1)

n = len(obs)
t = np.arange(2, n - 1)
ok = (done[t] < 0.5) & (done[t - 1] < 0.5) & (done[t - 2] < 0.5)
t = t[ok]
delta = obs[t + 1] - obs[t]
prev_delta = obs[t] - obs[t - 1]
feats = {
    "a_t": onehot(act[t]),
    "a_t-1": onehot(act[t - 1]),
    "a_t-2": onehot(act[t - 2]),
}
def ridge(X, Y, lam=1.0):
    split = int(0.75 * len(X))
    X = np.concatenate([X, np.ones((len(X), 1))], 1)
    A = X[:split]; w = np.linalg.solve(A.T @ A + lam * np.eye(A.shape[1]), A.T @ Y[:split])
    pred = X[split:] @ w
    return float(np.mean((pred - Y[split:]) ** 2) / np.mean(Y[split:] ** 2))
rows = {}
for name, X in [("a_t", feats["a_t"]), ("a_t-1", feats["a_t-1"]),
                ("a_t + a_t-1", np.hstack([feats["a_t"], feats["a_t-1"]])),
                ("a_t + a_t-1 + a_t-2", np.hstack([feats["a_t"], feats["a_t-1"], feats["a_t-2"]])),
                ("prev change", prev_delta),
                ("a_t + a_t-1 + prev change", np.hstack([feats["a_t"], feats["a_t-1"], prev_delta]))]:
    rows[name] = {lam: ridge(X, delta, lam) for lam in (1.0, 10.0, 100.0)}
    print(f"{name:28s}", {k: round(v, 3) for k, v in rows[name].items()})

def kron(o, a1h):
    return (o[:, :, None] * a1h[:, None, :]).reshape(len(o), -1)
o_t = obs[t]
print("action sizes", ACTION_SIZES)
for name, X in [("o x a_t", kron(o_t, feats["a_t"])), ("o x a_t-1", kron(o_t, feats["a_t-1"])),
                ("o x (a_t, a_t-1)", kron(o_t, np.hstack([feats["a_t"], feats["a_t-1"]]))),
                ("o x (a_t, a_t-1) + prev change", np.hstack([kron(o_t, np.hstack([feats["a_t"], feats["a_t-1"]])), prev_delta])),
                ("o + prev change", np.hstack([o_t, prev_delta]))]:
    rows[name] = {lam: ridge(X, delta, lam) for lam in (10.0, 100.0, 1000.0)}
    print(f"{name:32s}", {k: round(v, 3) for k, v in rows[name].items()})
print(json.dumps({"file": path, "steps": int(n), "held_out_error_over_copy_k1": rows}))
