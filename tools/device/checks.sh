#!/usr/bin/env bash
# Run ON THE LENT GPU MACHINE, through the device tool, in the repository root (README.md beside this file):
#   step 1 (carry .device/SHA256SUMS .device/wheels .device/imagenette2-160.tgz.part00):  bash tools/device/checks.sh 1
#   step 2 (carry .device/imagenette2-160.tgz.part01), within the machine's 30 s warm window: bash tools/device/checks.sh 2
# Step 1 needs no data: the data-free unit tests on CUDA, lesson 11's xresnet50 benchmark. Step 2 joins the archive,
# checks its SHA-256 against the mirror's, then: lesson 11's run with its full values (xresnet34, 128 px, 5 epochs,
# fp32, then bf16), the Imagenette tests on CUDA, lesson 10's batched-affine benchmark on the GPU.
# Each command has its own time limit; what it prints goes to $OUT/step<N>.log, one line per command (status,
# seconds, last lines) to $OUT/summary<N>.txt, which is printed at the end.
# To test this script on a machine without a GPU: DEVICE_CHECK_DEVICE=cpu DEVICE_CHECK_SMOKE=1 OUT=/tmp/o bash ... 1
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
step="${1:-}"
D="${DEVICE_DIR:-.device}"          # what prepare.sh made (another folder for tests)
[[ "$step" == 1 || "$step" == 2 ]] || { echo "usage: checks.sh 1|2" >&2; exit 2; }
OUT="${OUT:-/tmp/device-out}"; mkdir -p "$OUT" "$D"; D="$(cd "$D" && pwd)"
DEV="${DEVICE_CHECK_DEVICE:-cuda}"
SMOKE="${DEVICE_CHECK_SMOKE:-0}"
PY="${PYTHON:-python3}"
LOG="$OUT/step$step.log"; SUMMARY="$OUT/summary$step.txt"; : > "$LOG"; : > "$SUMMARY"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 MPLBACKEND=Agg
export EXP_MIRROR="$D/mirror" EXP_DATA="${EXP_DATA:-/tmp/exp-data}"
if ! "$PY" -c 'import fastprogress' 2>/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --target /tmp/site "$D"/wheels/*.whl >> "$LOG" 2>&1 \
        || { echo "checks.sh: fastprogress is missing and .device/wheels did not install (carry it)" >&2; exit 2; }
    export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

check() {   # check NAME SECONDS CMD...: run CMD under a time limit, log it, add a line to the summary
    local name="$1" limit="$2"; shift 2
    local t0=$SECONDS rc
    printf '\n===== %s: %s\n' "$name" "$*" >> "$LOG"
    timeout --kill-after 10 "$limit" "$@" >> "$LOG" 2>&1; rc=$?
    local status=ok; [ $rc -eq 0 ] || status="FAILED rc=$rc"; [ $rc -eq 124 ] && status="TIMED OUT after ${limit}s"
    { printf '%-12s %-24s %4ds  %s\n' "$name" "$status" $((SECONDS - t0)) "$*"
      grep -E 'ratio|final:|passed|failed|error|Error|GFLOP|ms/image|µs/image|images/s' <(sed -n "/===== $name:/,\$p" "$LOG") \
          | tail -n 6 | sed 's/^/             | /'; } >> "$SUMMARY"
    return $rc
}

"$PY" - >> "$LOG" 2>&1 <<'PYEOF'
import platform, torch
print('python', platform.python_version(), '| torch', torch.__version__, '| cuda', torch.version.cuda,
      '| available', torch.cuda.is_available())
if torch.cuda.is_available(): print('device', torch.cuda.get_device_name(0), '| count', torch.cuda.device_count())
PYEOF
head -n 2 "$LOG" | tee -a "$SUMMARY"
if [ "$DEV" = cuda ] && ! "$PY" -c 'import torch, sys; sys.exit(not torch.cuda.is_available())'; then
    echo "checks.sh: no CUDA device here" | tee -a "$SUMMARY"; exit 1
fi
XDIST=(); "$PY" -c 'import xdist' 2>/dev/null && XDIST=(-n 8)
if [ "$SMOKE" = 1 ]; then XDIST=(); fi
PYTEST=("$PY" -m pytest -q -p no:cacheprovider "${XDIST[@]}")

if [ "$step" = 1 ]; then
    tests=(tests/test_loop_contract.py tests/test_nb02_backward.py tests/test_nb04_callbacks.py tests/test_nb05_anneal.py
           tests/test_nb05b_cancel.py tests/test_nb06_hooks.py tests/test_nb07_norm.py tests/test_nb09_optimizers.py
           tests/test_nb09b_learner.py tests/test_nb09c_progress.py tests/test_nb10_augmentation.py
           tests/test_nb10b_mixup.py tests/test_nb10c_fp16.py)
    bench=(--bs 64 --size 128 --steps 10 --repeats 5)
    attn=()
    if [ "$SMOKE" = 1 ]; then
        tests=(tests/test_nb06_hooks.py); bench=(--bs 2 --size 32 --steps 1 --repeats 1)
        attn=(--bs 4 --len 6 --d 32 --heads 4 --steps 1 --repeats 1)
    fi
    check unit-tests 240 "${PYTEST[@]}" "${tests[@]}"
    check bench-xres 120 "$PY" tests/benchmarks/bench_xresnet.py --device "$DEV" "${bench[@]}"
    check bench-attn 60 "$PY" tests/benchmarks/bench_attention.py --device "$DEV" "${attn[@]}"
else
    mkdir -p "$D/mirror"
    part0="$D/imagenette2-160.tgz.part00"; part1="$D/imagenette2-160.tgz.part01"
    if [ ! -f "$part0" ] || [ ! -f "$part1" ]; then
        echo "checks.sh 2: $part0 or $part1 is missing (the machine went back between the calls?): run step 1 again" \
            | tee -a "$SUMMARY"; exit 2
    fi
    cat "$part0" "$part1" > "$D/mirror/imagenette2-160.tgz" && cp "$D/SHA256SUMS" "$D/mirror/SHA256SUMS"
    if ! check sha256 60 bash -c "cd '$D/mirror' && sha256sum -c SHA256SUMS"; then
        echo "checks.sh 2: the joined archive does not match the mirror's SHA-256: run prepare.sh here again" | tee -a "$SUMMARY"
        exit 1
    fi
    check untar 120 "$PY" -c 'from coursekit.datasets import URLs, untar_data; print(untar_data(URLs.IMAGENETTE_160))'
    workers=$(( $(nproc) - 2 )); [ $workers -gt 12 ] && workers=12
    run=(--arch xresnet34 --size 128 --epochs 5)          # lesson 11's full values (bs 64, lr 1e-2, Adam, ls 0.1)
    tests=(tests/test_train_imagenette.py tests/test_nb11_xresnet.py tests/test_nb08_data_block.py tests/test_nb11a_transfer.py)
    affine=(); half=(); mp=(--workers $workers)
    if [ "$SMOKE" = 1 ]; then
        run=(--arch xresnet18 --size 32 --epochs 1 --n-train 200 --n-valid 100); workers=1
        half=(--arch tiny_bn_cnn)                      # bf16 autocast on a CPU is ~40x slower: 100 s with xresnet18
        tests=(tests/test_nb11_xresnet.py -k split); affine=(--n 64 --repeats 1); mp=(--smoke --workers 0)
    fi
    check train-fp32 240 "$PY" train_imagenette.py "${run[@]}" --precision fp32 --workers $workers --device "$DEV"
    check train-bf16 180 "$PY" train_imagenette.py "${run[@]}" "${half[@]}" --precision bf16 --workers $workers --device "$DEV"
    check data-tests 180 "${PYTEST[@]}" "${tests[@]}"
    check bench-affine 90 "$PY" tests/benchmarks/bench_pil_vs_batch_affine.py --device "$DEV" "${affine[@]}"
    check bench-mp 150 "$PY" tests/benchmarks/bench_mixed_precision.py --device "$DEV" "${mp[@]}"
fi
echo "== summary of step $step"; cat "$SUMMARY"
! grep -qE 'FAILED|TIMED OUT' "$SUMMARY"
