# The copy-relative rewards in the curiosity arm alone, default training, seeds 0-4, 3000 steps,
# two at a time (run from the repository root once the CPU is free).
D=docs/results/forward-study/exploration-2026-12-02-copy-reward
run() { REWARD_PATCH=$1 PYTHONPATH=$D OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 \
  .venv/bin/python docs/results/forward-study/exploration-2026-12-02-ppo/arm.py 3000 $2 '{}' 2>/dev/null | tail -1 | sed "s/^{/{\"reward\": \"$1\", /" >> $D/curiosity_arm_rewards.jsonl; }
for pair in "excess 0:excess 1" "excess 2:excess 3" "excess 4:ratio 0" "ratio 1:ratio 2" "ratio 3:ratio 4"; do
  IFS=: read a b <<< "$pair"; run $a & run $b & wait
done
