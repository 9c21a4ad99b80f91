#!/usr/bin/env bash
# Regenerate everything under benchmarks/results/, in order, offline, timing each step.
#
#   bash benchmarks/run_all.sh                 # the committed results (a quiet machine; see benchmarks/README.md)
#   THREADS=2 bash benchmarks/run_all.sh       # pin threads for every measuring step
#
# Every setting below can be overridden from the environment (smoke tests use tiny presets and a temporary
# RESULTS_DIR / ARTIFACTS; never leave such results in benchmarks/results).
set -euo pipefail
cd "$(dirname "$0")/.."

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
PY=${PYTHON:-python}
RESULTS_DIR=${RESULTS_DIR:-benchmarks/results}
ARTIFACTS=${ARTIFACTS:-artifacts}
PRESET=${PRESET:-minilm}
CONSTRAINT_EPOCHS=${CONSTRAINT_EPOCHS:-3}
THROUGHPUT_STEPS=${THROUGHPUT_STEPS:-12}
ISOT_EPOCHS=${ISOT_EPOCHS:-2}
ISOT_TRAIN=${ISOT_TRAIN-8000}       # of 27,109 ISOT training titles (empty: all)
LIAR_EPOCHS=${LIAR_EPOCHS:-2}
LIAR_TRAIN=${LIAR_TRAIN:-}          # empty: all 10,248 LIAR training statements
ARCH_ARGS=${ARCH_ARGS:-}            # e.g. "--min-time 2" or "--presets minilm,albert"
SEEDS_ARGS=${SEEDS_ARGS:-}          # e.g. "--samples 512 --repeats 3"
RUNTIME_ARGS=${RUNTIME_ARGS:---repeats 7}
DISTILL_ARGS=${DISTILL_ARGS:-}      # e.g. "--layers 3" or "--samples 500"
THREADS=${THREADS:-}
threads_arg=()
if [[ -n "$THREADS" ]]; then threads_arg=(--threads "$THREADS"); fi

mkdir -p "$RESULTS_DIR"
timings="$RESULTS_DIR/run_all_timings.json"
log=$(mktemp)
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
run_start=$SECONDS

step() {  # step NAME COMMAND...: run, time, and record "NAME SECONDS"
    local name=$1 start=$SECONDS
    shift
    echo "=== [$name] $*"
    "$@"
    echo "$name $((SECONDS - start))" >>"$log"
    echo "=== [$name] done in $((SECONDS - start)) s"
}

minilm_run="$ARTIFACTS/bench-$PRESET-constraint"
# shellcheck disable=SC2086  # *_ARGS are word lists on purpose
{
step finetune-constraint "$PY" benchmarks/finetune_bench.py --preset "$PRESET" --data constraint \
    --epochs "$CONSTRAINT_EPOCHS" --throughput-steps "$THROUGHPUT_STEPS" --export \
    --run-dir "$minilm_run" --results-dir "$RESULTS_DIR"
step finetune-isot "$PY" benchmarks/finetune_bench.py --preset "$PRESET" --data isot --epochs "$ISOT_EPOCHS" \
    ${ISOT_TRAIN:+--max-train-samples "$ISOT_TRAIN"} --export --run-dir "$ARTIFACTS/bench-$PRESET-isot" --results-dir "$RESULTS_DIR"
step finetune-liar "$PY" benchmarks/finetune_bench.py --preset "$PRESET" --data liar --epochs "$LIAR_EPOCHS" \
    ${LIAR_TRAIN:+--max-train-samples "$LIAR_TRAIN"} --export --run-dir "$ARTIFACTS/bench-$PRESET-liar" --results-dir "$RESULTS_DIR"
step architectures "$PY" benchmarks/architectures.py --minilm-run "$minilm_run" --runs-root "$ARTIFACTS" \
    --results-dir "$RESULTS_DIR" "${threads_arg[@]}" $ARCH_ARGS
step seeds-protocol "$PY" benchmarks/seeds_protocol.py --run-dir "$minilm_run" --results-dir "$RESULTS_DIR" \
    "${threads_arg[@]}" $SEEDS_ARGS
step runtime "$PY" benchmarks/bench_runtime.py --run-dir "$minilm_run" --variant int8-dynamic \
    --name "bench-$PRESET-constraint" --out "$RESULTS_DIR" ${THREADS:+--threads "$THREADS"} $RUNTIME_ARGS
step distill "$PY" benchmarks/distill.py --teacher-run "$minilm_run" --root "$ARTIFACTS/distill" \
    --results-dir "$RESULTS_DIR" "${threads_arg[@]}" $DISTILL_ARGS
}

"$PY" - "$log" "$timings" "$started" "$((SECONDS - run_start))" <<'EOF'
import json, sys
log, out, started, total = sys.argv[1:]
steps = {name: int(sec) for name, sec in (line.split() for line in open(log) if line.strip())}
json.dump({"started": started, "steps_seconds": steps, "total_seconds": int(total),
           "command": "bash benchmarks/run_all.sh"}, open(out, "w"), indent=2)
print(f"total {int(total)} s; per step: {steps}; wrote {out}")
EOF
rm -f "$log"
