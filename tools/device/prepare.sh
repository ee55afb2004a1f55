#!/usr/bin/env bash
# Run HERE (the development machine), before a session's GPU calls: fills the ignored folder .device/ with what
# the lent GPU machine lacks. The device tool carries at most 64 MiB a call and the Imagenette archive is 91 MiB,
# so the archive travels in two byte halves, one per call; step 2 joins them and checks the mirror's SHA-256.
#   .device/SHA256SUMS                        the mirror's line for imagenette2-160.tgz
#   .device/imagenette2-160.tgz.part00, 01    the archive, split in two
#   .device/wheels/                           fastprogress 1.0.3 (no dependencies; the GPU image lacks it)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
D="${DEVICE_DIR:-.device}"          # another folder for tests
mirror="${EXP_MIRROR:-$(cd .. && pwd)/shared/data}"
[ -f "$mirror/imagenette2-160.tgz" ] || { echo "prepare.sh: no $mirror/imagenette2-160.tgz (set EXP_MIRROR)" >&2; exit 2; }
rm -rf "$D.tmp" && mkdir -p "$D.tmp/wheels"
grep ' imagenette2-160.tgz$' "$mirror/SHA256SUMS" > "$D.tmp/SHA256SUMS"
split -n 2 -d "$mirror/imagenette2-160.tgz" "$D.tmp/imagenette2-160.tgz.part"
if [ "${DEVICE_NO_WHEELS:-0}" != 1 ]; then         # tests: fastprogress is installed where they run
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation py \
        -d "$D.tmp/wheels" fastprogress==1.0.3 2>&1 | grep -v '^WARNING: Location' || true
    ls "$D.tmp"/wheels/fastprogress-1.0.3-*.whl > /dev/null
fi
rm -rf "$D" && mv "$D.tmp" "$D"
du -sh "$D"/*
echo "carry for step 1: .device/SHA256SUMS .device/wheels .device/imagenette2-160.tgz.part00"
echo "carry for step 2: .device/imagenette2-160.tgz.part01"
