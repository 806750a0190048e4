cd /work/main
for p in none head_lr:0.1 momentum_only wd:1.0; do
  name=$(echo $p | tr ':' '_')
  if [ $p = none ]; then patch=""; else patch=$p; fi
  PYTHONPATH=/work/exp FWD_PATCH=$patch .venv/bin/python -m pamiq_ros.bench.curiosity_forward --variants default --seeds 0,1,2,3 --steps 2000 --workers 2 --out /work/exp/r1_$name > /work/exp/r1_$name.log 2>&1
done
echo done > /work/exp/chain1.done
