#!/bin/bash
# Not finished (see README.md here): 12000 steps, seeds 0-2, the sequence buffers at 2000
# against 6000, figures at every 2000 steps. About 80 min per pair on 2 cores.
# Run from the repository root: bash docs/results/forward-study/sequence-buffer-2026-12-01/run12k.sh
here=$(dirname "$0")
for seed in 0 1 2; do
  .venv/bin/python "$here/../exploration-2026-12-01/bigbuf.py" 12000 $seed '{"sequence_buffer_size": 6000}' 7 >> "$here/seq6000_12000.jsonl" &
  .venv/bin/python "$here/../exploration-2026-12-01/bigbuf.py" 12000 $seed '{"sequence_buffer_size": 2000}' 7 >> "$here/seq2000_12000.jsonl"
  wait
  echo "seed $seed done $(date +%T)"
done
.venv/bin/python "$here/summarize.py" "$here/seq2000_12000.jsonl" "$here/seq6000_12000.jsonl" "$here/sequence_6000_at_12000.json"
