cd /work/main
run() { OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 .venv/bin/python /work/exp/arm.py 3000 $1 "$2" 2>/dev/null | tail -1 >> /work/exp/chain3.jsonl; }
v='{"normalize_rewards": false, "ppo": {"advantage": "one_step", "entropy_coef": 0.0}}'
run 5 "$v" & run 6 "$v" & wait
run 7 "$v" & run 8 "$v" & wait
run 9 "$v"
echo done > /work/exp/chain3.done
