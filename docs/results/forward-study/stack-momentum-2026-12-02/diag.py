import sys, glob, numpy as np
path = sorted(glob.glob(sys.argv[1] + "/runs/*/trainer/checkpoints/0*/buffers/forward_dynamics/data.npz"))[-1]
obs = np.load(path)["key_2"]; n = len(obs); split = int(0.75 * n)
dl = np.diff(obs, axis=0)             # dl[t] = o_{t+1} - o_t
y, x = dl[1:], dl[:-1]                # predict dl[t] from dl[t-1]
s = split - 1
c_diag = (x[:s] * y[:s]).sum(0) / ((x[:s] ** 2).sum(0) + 1e-6)
c_one = float((x[:s] * y[:s]).sum() / (x[:s] ** 2).sum())
for name, pred in (("diag", x[s:] * c_diag), ("one scalar", x[s:] * c_one), ("copy", 0 * x[s:])):
    print(name, round(float(((pred - y[s:]) ** 2).mean() / (y[s:] ** 2).mean()), 3))
print("scalar", round(c_one, 3), "diag mean", round(float(c_diag.mean()), 3), "sd", round(float(c_diag.std()), 3))
