#!/bin/bash
# two at a time (2 cores): control then 6000 per seed
cd /work/main
for seed in 0 1 2 3 4; do
  .venv/bin/python /work/exp/seqbuf/bigbuf.py 3000 $seed '{"sequence_buffer_size": 6000}' >> /work/exp/seqbuf/seq6000_3000.jsonl 2>>/work/exp/seqbuf/err.log &
  .venv/bin/python /work/exp/seqbuf/bigbuf.py 3000 $seed '{}' >> /work/exp/seqbuf/default_3000.jsonl 2>>/work/exp/seqbuf/err.log
  wait
  echo "seed $seed done $(date +%T)"
done
