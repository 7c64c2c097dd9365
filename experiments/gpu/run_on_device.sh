#!/usr/bin/env bash
# Run GPU studies (experiments/gpu_studies.py) on a lent GPU machine within a time limit; what they produce to $OUT.
#
#   bash experiments/gpu/run_on_device.sh MINUTES sweep|seeds STUDY [STUDY ...]
#   e.g.  bash experiments/gpu/run_on_device.sh 7 sweep gpu-llama-stdlib      (give the call ≈ 2 more minutes)
#
# sweep: pass 1 (the learning-rate sweep on seed 0, --sweep_only); seeds: pass 2 (seeds 1 and 2 at each init's best
# rate; it reads pass 1's records from experiments/results/, so commit them first). The studies run side by side,
# each with the workers that `python experiments/gpu_studies.py plan` gives. At MINUTES the unfinished runs are
# stopped; finished ones are kept, so the same command later resumes. $OUT gets results/<study>.jsonl (copy them
# into experiments/results/), reports/<study>.md, figures/<study>.png, logs/, machine.txt (GPU, versions, commit)
# and corpus.json (the standard library's size there: it differs between Python versions).
#
# The machine has CUDA torch, torchvision, accelerate, numpy, scikit-learn, matplotlib, but an older transformers, no
# datasets, evaluate or mlxtend, and no package registry. So first, on a machine with one, at the repository root in
# the environment you test with, download those packages' wheels for its Python 3.12 into .whl/ (kept out of git
# by .git/info/exclude), and carry .whl with the run:
#   pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl $(python3 -c 'from importlib.metadata
#     import version as v; print(*(f"{p}=={v(p)}" for p in """transformers kernels huggingface_hub tokenizers
#     safetensors datasets evaluate dill multiprocess accelerate typer httpx2 httpcore2 click tomlkit fsspec
#     truststore idna anyio mlxtend""".split()))')
# This script then installs them as the machine needs (no index, no dependencies, into /tmp/site):
#   python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
#   export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1
set -uo pipefail
cd "$(dirname "$0")/../.."
usage="usage: run_on_device.sh MINUTES sweep|seeds STUDY [STUDY ...] (the studies: python experiments/gpu_studies.py plan)"
minutes=${1:?$usage}
pass=${2:?$usage}
shift 2
[ $# -gt 0 ] || { echo "$usage" >&2; exit 2; }
case $pass in
    sweep) flags=(--sweep_only) ;;
    seeds) flags=() ;;
    *) echo "the pass must be sweep or seeds, got '$pass'" >&2; exit 2 ;;
esac
OUT=${OUT:-/tmp/gpu-studies}
mkdir -p "$OUT/results" "$OUT/reports" "$OUT/figures" "$OUT/logs"

if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
fi
export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1
{
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || echo "no GPU"
    python3 -c "import sys, torch, transformers; print('python', sys.version.split()[0], 'torch', torch.__version__,
                'transformers', transformers.__version__, 'cuda', torch.cuda.is_available())"
    git log -1 --format="commit %H" 2>/dev/null
    echo "$minutes min, pass $pass: $*"
} > "$OUT/machine.txt" 2>&1

# Check the names, build each study's data once (two studies of one corpus must not build it at the same time) and
# read the workers from the plan.
plan=$(python3 - "$@" 2>"$OUT/logs/data.log" <<'PY'
import sys
sys.path.insert(0, "experiments")
import gpu_studies
from _runner import ScriptRun

workers = {row["study"]: row["workers"] for row in gpu_studies.plan_rows()}
workers.update({name: 1 for name in gpu_studies.STUDIES if name.startswith("dry-")})  # to try this script on a CPU
unknown = [name for name in sys.argv[1:] if name not in workers]
if unknown:
    sys.exit(f"unknown GPU studies {unknown}; the studies: {sorted(workers)}")
for name in sys.argv[1:]:
    study = gpu_studies.STUDIES[name]
    if isinstance(study.run, ScriptRun):
        study.run.data_path(name)
    print(name, workers[name])
PY
) || { cat "$OUT/logs/data.log" >&2; exit 2; }
cp experiments/results/runs/data/stdlib/corpus.json "$OUT/" 2>/dev/null

set -m  # each study in its own process group, so that stopping it stops its workers too
groups=()
while read -r study workers; do
    python3 experiments/gpu_studies.py run --study "$study" --workers "$workers" "${flags[@]}" \
        >"$OUT/logs/$study.log" 2>&1 &
    groups+=("$!")
done <<<"$plan"
deadline=$((SECONDS + minutes * 60))
while [ "$SECONDS" -lt "$deadline" ] && [ -n "$(jobs -r)" ]; do
    sleep 5
done
for group in "${groups[@]}"; do
    kill -TERM -- "-$group" 2>/dev/null
done
wait

while read -r study _; do
    cp "experiments/results/$study.jsonl" "$OUT/results/" 2>/dev/null || echo "$study: no finished run" >&2
    python3 experiments/gpu_studies.py report --study "$study" >"$OUT/reports/$study.md" 2>>"$OUT/logs/$study.log"
    cp "docs/figures/$study.png" "$OUT/figures/" 2>/dev/null
done <<<"$plan"
cat "$OUT"/reports/*.md
