#!/usr/bin/env bash
# Runs on every training node (one srun task per node, started by train.slurm):
# `accelerate launch` with this node's machine rank = its position in the training node list.
# The rank comes from the node's name, not SLURM_PROCID, so the rendezvous host (the first node
# of the list, MASTER_ADDR) is always machine rank 0 whatever order srun starts tasks in.
#
#   train_node.sh [--dry-run] NODE1,NODE2,... ACCELERATE_LAUNCH_ARGS...
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

dry_run=0
if [[ ${1:-} == --dry-run ]]; then
    dry_run=1
    shift
fi
(($# >= 2)) || die "usage: train_node.sh [--dry-run] NODE1,NODE2,... ACCELERATE_LAUNCH_ARGS..."
IFS=, read -ra train_nodes <<<"$1"
shift
node=${SLURMD_NODENAME:-$(hostname -s)}
machine_rank=""
for index in "${!train_nodes[@]}"; do
    [[ ${train_nodes[index]} != "$node" ]] || machine_rank=$index
done
[[ -n $machine_rank ]] || die "this node ($node) is not one of the training nodes (${train_nodes[*]})"

command=(accelerate launch --machine_rank "$machine_rank" "$@")
if ((dry_run)); then
    show "$node train" "${command[@]}"
else
    echo "$(date) $node: machine rank $machine_rank of ${#train_nodes[@]}"
    exec "${command[@]}"
fi
