#!/usr/bin/env bash
# Nsight Compute figures of the softmax backward's grids (on the GPU machine): tensor pipe
# activity, issue slots, occupancy and the stall reasons per issued instruction, for each
# grid of one kernel.grad call. Arguments go to bench/profile_softmax_bwd.py, e.g.
#   bash scripts/ncu_backward.sh --kind causal --d 128 --n 16384 [--grad-dq-atomic]
set -euo pipefail
cd "$(dirname "$0")/.."
ncu=$(command -v ncu || echo /usr/local/cuda/bin/ncu)
stalls=""
for s in barrier long_scoreboard short_scoreboard wait math_pipe_throttle mio_throttle \
         lg_throttle selected not_selected dispatch_stall membar; do
  stalls+="smsp__average_warps_issue_stalled_${s}_per_issue_active.ratio,"
done
metrics="gpu__time_duration.sum,sm__pipe_tensor_op_gmma_cycles_active.avg.pct_of_peak_sustained_active,\
sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active,\
sm__inst_issued.avg.pct_of_peak_sustained_active,sm__warps_active.avg.pct_of_peak_sustained_active,\
launch__registers_per_thread,launch__occupancy_limit_registers,launch__occupancy_limit_shared_mem,\
dram__throughput.avg.pct_of_peak_sustained_elapsed,lts__t_sectors_op_red.sum,${stalls%,}"
# One warm-up call compiles; the profiled call is the last one (3 grids, or 4 with atomics).
"$ncu" --clock-control none --metrics "$metrics" -k regex:attention_grad --csv \
  python3 bench/profile_softmax_bwd.py --iters 1 "$@" 2>/dev/null | \
  python3 -c "
import csv, sys
rows = [r for r in csv.reader(sys.stdin) if len(r) > 10]
head, rows = rows[0], rows[1:]
k, m, v = head.index('Kernel Name'), head.index('Metric Name'), head.index('Metric Value')
ids = head.index('ID')
seen = {}
for r in rows:
    seen.setdefault((r[ids], r[k]), {})[r[m]] = r[v]
# The last call's grids: the highest IDs, one per kernel name.
last = {}
for (i, name), vals in seen.items():
    if name not in last or int(i) > int(last[name][0]):
        last[name] = (i, vals)
for name, (i, vals) in sorted(last.items()):
    print(f'== {name} (launch {i})')
    for key, val in vals.items():
        short = key.replace('smsp__average_warps_issue_stalled_', 'stall ').replace(
            '_per_issue_active.ratio', '').replace('.avg.pct_of_peak_sustained_active', ' %')
        print(f'  {short}: {val}')
"
