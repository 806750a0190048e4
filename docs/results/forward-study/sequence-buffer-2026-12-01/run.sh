#!/bin/bash
# 3000 steps, curiosity arm, seeds 0-4: the sequence buffers at 2000 (the default when this ran,
# written as "over": {} in default_3000.jsonl) against 6000. Two at a time (2 cores).
# Run from the repository root: bash docs/results/forward-study/sequence-buffer-2026-12-01/run.sh
here=$(dirname "$0")
for seed in 0 1 2 3 4; do
  .venv/bin/python "$here/../exploration-2026-12-01/bigbuf.py" 3000 $seed '{"sequence_buffer_size": 6000}' >> "$here/seq6000_3000.jsonl" &
  .venv/bin/python "$here/../exploration-2026-12-01/bigbuf.py" 3000 $seed '{"sequence_buffer_size": 2000}' >> "$here/default_3000.jsonl"
  wait
  echo "seed $seed done $(date +%T)"
done
.venv/bin/python "$here/summarize.py" "$here/default_3000.jsonl" "$here/seq6000_3000.jsonl" "$here/sequence_6000_at_3000.json"
