import sys, glob, numpy as np
path = sorted(glob.glob(sys.argv[1] + "/runs/*/trainer/checkpoints/0*/buffers/forward_dynamics/data.npz"))[-1]
d = np.load(path); obs = d["key_2"]
dl = np.diff(obs, axis=0)
a, b = dl[1:], dl[:-1]
corr = np.sum(a * b) / np.sqrt(np.sum(a * a) * np.sum(b * b))
print("lag-1 correlation of the change (pooled):", round(float(corr), 3))
for lag in (2, 3, 5, 10):
    a, b = dl[lag:], dl[:-lag]
    print(f"lag-{lag}:", round(float(np.sum(a*b)/np.sqrt(np.sum(a*a)*np.sum(b*b))), 3))
# how the change spreads: o_{t+2}-o_t vs 2x var of one step
d1 = np.mean(np.sum(np.diff(obs, axis=0)**2, 1)); d2 = np.mean(np.sum((obs[2:]-obs[:-2])**2, 1)); d4 = np.mean(np.sum((obs[4:]-obs[:-4])**2, 1))
print("E|o_{t+1}-o_t|^2", round(float(d1),3), " E|o_{t+2}-o_t|^2", round(float(d2),3), " k=4:", round(float(d4),3))
