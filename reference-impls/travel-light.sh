#!/usr/bin/env bash
# What travels to the GPU box is capped at 64 MiB (tracked + untracked-not-ignored files + carried paths); the tracked
# files alone are about 63 MiB since the 2026-12-06 fixtures, so a carried Java kit (12 MiB) does not fit. `on` takes
# the folders a GPU run does not read out of the index and ignores them (the files stay on disk); `off` puts them back.
# Never commit between `on` and `off`.   Usage: reference-impls/travel-light.sh on|off
set -euo pipefail
cd "$(dirname "$0")/.."
DIRS="src/main/resources/modeldiff/demo src/test/resources/tokenizers src/test/resources/quant src/test/resources/malformed"
EX=.git/info/exclude
case "${1:?on|off}" in
  on)  echo "# travel-light begin" >> "$EX"
       for d in $DIRS; do git rm -r -q --cached "$d"; echo "/$d/" >> "$EX"; done
       echo "# travel-light end" >> "$EX" ;;
  off) git reset -q -- $DIRS; sed -i '/^# travel-light begin$/,/^# travel-light end$/d' "$EX" ;;
esac
git ls-files -z | xargs -0 du -ck 2>/dev/null | tail -1
