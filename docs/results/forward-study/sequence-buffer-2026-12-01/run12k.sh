#!/bin/bash
cd /work/main
for seed in 0 1 2; do
  .venv/bin/python /work/exp/seqbuf/bigbuf.py 12000 $seed '{"sequence_buffer_size": 6000}' >> /work/exp/seqbuf/seq6000_12000.jsonl 2>>/work/exp/seqbuf/err12k.log &
  .venv/bin/python /work/exp/seqbuf/bigbuf.py 12000 $seed '{}' >> /work/exp/seqbuf/default_12000.jsonl 2>>/work/exp/seqbuf/err12k.log
  wait
  echo "seed $seed done $(date +%T)"
done
