#!/usr/bin/env bash
# Print the path of a Python >= 3.12 interpreter, or explain and fail.
# Looks at $PYTHON, then python3.13/3.12/python3 on PATH, then pyenv's versions.
set -u
ok() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; }
candidates=("${PYTHON:-}" python3.13 python3.12 python3)
for dir in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[2-9]*/bin; do candidates+=("$dir/python3"); done
for candidate in "${candidates[@]}"; do
  [ -n "$candidate" ] || continue
  path=$(command -v "$candidate" 2>/dev/null) || continue
  if ok "$path"; then echo "$path"; exit 0; fi
done
echo "hybridlens needs Python >= 3.12 (the newest autolens requires it) and found none." >&2
echo "Install one (e.g. 'pyenv install 3.12' or your distribution's python3.12) or set PYTHON=/path/to/python3.12." >&2
exit 1
