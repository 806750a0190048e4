cd /work/main
run() { OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 .venv/bin/python /work/exp/arm.py 3000 $1 "$2" 2>/dev/null | tail -1 >> /work/exp/chain2.jsonl; }
for v in '{"normalize_rewards": false, "ppo": {"advantage": "one_step", "entropy_coef": 0.0}}' '{"ppo": {"advantage": "one_step"}}'; do
  run 0 "$v" & run 1 "$v" & wait
  run 2 "$v" & run 3 "$v" & wait
  run 4 "$v"
done
echo done > /work/exp/chain2.done
