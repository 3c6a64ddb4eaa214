#!/usr/bin/env bash
# Install paddle_dx as a user would (a non-editable wheel, the pinned constraints, paddleclas
# --no-deps) on every supported Python version this machine has besides the main one, and run a
# smoke check on each: the console command, the shipped configs, one epoch of the demo config.
# Supported versions = the "Programming Language :: Python :: 3.X" classifiers of pyproject.toml.
# A supported version that is found but fails, fails CI; one that is not installed is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PYTHON=${PYTHON:-python}
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
unset PYTHONPATH

MAIN=$($PYTHON -c 'import sys; print("%d.%d" % sys.version_info[:2])')
SUPPORTED=$($PYTHON - <<'PY'
import tomllib
classifiers = tomllib.load(open("pyproject.toml", "rb"))["project"]["classifiers"]
print(" ".join(c.rsplit(" ", 1)[1] for c in classifiers if c.startswith("Programming Language :: Python :: 3.")))
PY
)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
quiet() { grep -v "WARNING: Location 'file:" || true; }  # the machine's extra local indexes, not errors

find_python() {  # a working python3.X: a pyenv build, else one on PATH (pyenv's shims may not run)
  local v=$1 candidate
  for candidate in $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$v".*/bin/python"$v" 2>/dev/null | sort -rV) \
                   $(command -v "python$v" 2>/dev/null); do
    if "$candidate" -c 'import sys, venv' >/dev/null 2>&1; then echo "$candidate"; return; fi
  done
}

smoke() {  # $1 python, $2 venv folder, $3 empty work folder
  local py=$1 venv=$2
  "$py" -m venv "$venv"
  "$venv/bin/python" -m pip install -q -c "$REPO/constraints.txt" "$WHEEL[cpu]" 2>&1 | quiet
  "$venv/bin/python" -m pip install -q --no-deps -r "$REPO/requirements-paddleclas.txt" 2>&1 | quiet
  cd "$3"  # not the repository: the installed package must be the one imported
  "$venv/bin/python" -c 'import paddle_dx; assert "site-packages" in paddle_dx.__file__, paddle_dx.__file__'
  "$venv/bin/paddle_dx" --help >/dev/null
  "$venv/bin/paddle_dx" configs > configs.txt
  grep -q '^esophagus_resnet50 ' configs.txt
  "$venv/bin/python" -m paddle_dx make-demo-data --out demo_data/images --per-class 12 --size 48 >/dev/null
  "$venv/bin/paddle_dx" split --image-root demo_data/images --out demo_data/lists --classes normal,lesion >/dev/null
  "$venv/bin/paddle_dx" train -c demo -o Global.epochs=1 -o Global.device=cpu -o Global.use_visualdl=false \
      > train.log 2>&1 || { tail -20 train.log; return 1; }
  test -f output/demo/best_model.pdparams
}

echo "python_versions: supported ${SUPPORTED}; main ${MAIN} (tested by make test)"
echo "python_versions: building the wheel"
$PYTHON -m pip wheel . --no-deps -w "$WORK/wheel" -q 2>&1 | quiet
rm -rf build paddle_dx.egg-info
WHEEL=$(ls "$WORK"/wheel/paddle_dx-*.whl)
$PYTHON - "$WHEEL" <<'PY'
import sys, zipfile
from pathlib import Path
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
wanted = {f"paddle_dx/configs/{p.name}" for p in Path("configs").glob("*.yaml")}
missing = sorted(wanted - names)
entry = next(n for n in names if n.endswith("entry_points.txt"))
scripts = zipfile.ZipFile(sys.argv[1]).read(entry).decode()
if missing or "paddle_dx = paddle_dx.commands:main" not in scripts:
    sys.exit(f"wheel {sys.argv[1]}: missing {missing or 'the paddle_dx console script'}")
print(f"python_versions: wheel has the {len(wanted)} configs and the paddle_dx command")
PY

failed=() versions=() pythons=() pids=()
start=$SECONDS
for v in $SUPPORTED; do  # side by side: each mostly waits on pip and unzipping, one core each
  [ "$v" = "$MAIN" ] && continue
  py=$(find_python "$v")
  if [ -z "$py" ]; then
    echo "python_versions: $v skipped (not installed on this machine)"
    continue
  fi
  mkdir -p "$WORK/run$v"
  (set -e; smoke "$py" "$WORK/venv$v" "$WORK/run$v") > "$WORK/smoke$v.log" 2>&1 &
  versions+=("$v") pythons+=("$py") pids+=($!)
done
for i in "${!versions[@]}"; do
  v=${versions[$i]} py=${pythons[$i]}
  if wait "${pids[$i]}"; then
    echo "python_versions: $v ok ($py, done after $((SECONDS - start)) s)"
  else
    cat "$WORK/smoke$v.log"
    echo "python_versions: $v FAILED ($py)"
    failed+=("$v")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "python_versions: failed on ${failed[*]}" >&2
  exit 1
fi
