#!/bin/bash
# 9000 steps, curiosity arm, seeds 0-2: the sequence buffers at 2000 against 6000, figures at
# every 1000 steps (10 evaluation points). About 18 min per pair on 2 cores.
# Run from the repository root: bash docs/results/forward-study/sequence-buffer-2026-12-01/run9k.sh
here=$(dirname "$0")
script="$here/../exploration-2026-12-01/bigbuf.py"
for seed in 0 1 2; do
  .venv/bin/python "$script" 9000 $seed '{"sequence_buffer_size": 6000}' 10 >> "$here/seq6000_9000.jsonl" &
  .venv/bin/python "$script" 9000 $seed '{"sequence_buffer_size": 2000}' 10 >> "$here/seq2000_9000.jsonl"
  wait
  echo "seed $seed done $(date +%T)"
done
.venv/bin/python "$here/summarize.py" "$here/seq2000_9000.jsonl" "$here/seq6000_9000.jsonl" "$here/sequence_6000_at_9000.json"
.venv/bin/python "$here/plot_over_steps.py" "$here/seq2000_9000.jsonl" "$here/seq6000_9000.jsonl" 1000 "$here/sequence_6000_to_9000.png"
