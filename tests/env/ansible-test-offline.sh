#!/usr/bin/env bash
# ansible-test bootstraps pip in its venvs with a script it downloads from a
# host these machines cannot reach. Seed its cache with a local stand-in that
# does the same job: ensurepip, then `pip install` with the same arguments
# (minus --no-setuptools/--no-wheel, which pip install does not take).
set -euo pipefail
venv=$1
py="$venv/bin/python"
src=$("$py" -c 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))')
pip_version=$(sed -n "s/^ *pip='\([0-9.]*\)',\$/\1/p" "$src/_internal/python_requirements.py" | head -n1)
[ -n "$pip_version" ] || { echo "cannot find ansible-test's pip version" >&2; exit 1; }
cache="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
mkdir -p "$(dirname "$cache")"
if [ ! -s "$cache" ]; then
  cat > "$cache" <<'PY'
# Local stand-in for pip's get-pip.py, seeded by virtfleet.virt's tests/env/ansible-test-offline.sh.
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ('--no-setuptools', '--no-wheel')]
subprocess.check_call([sys.executable, '-m', 'ensurepip', '--upgrade', '--default-pip'],
                      stdout=subprocess.DEVNULL)
subprocess.check_call([sys.executable, '-m', 'pip', 'install'] + args)
PY
  echo "[ansible-test-offline] seeded $cache"
fi
