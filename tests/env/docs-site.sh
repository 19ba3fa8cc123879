#!/usr/bin/env bash
# The collection's documentation tools, in a virtualenv of their own.
#
#   tests/env/docs-site.sh OUTDIR   build the docs site (antsibull-docs + Sphinx, warnings are errors)
#                                   into OUTDIR: OUTDIR/index.html,
#                                   OUTDIR/collections/virtfleet/virt/vm_module.html, ...
#   tests/env/docs-site.sh --lint   antsibull-changelog lint (fragments), lint-changelog-yaml
#                                   (changelogs/changelog.yaml), CHANGELOG.rst up to date, and
#                                   antsibull-docs lint-collection-docs (plugin docs, docs links,
#                                   references)
#   tests/env/docs-site.sh --venv   print the path of the docs virtualenv (creating it when missing)
#   tests/env/docs-site.sh --browser  print the path of Chromium (Debian's package, installed when
#                                   missing), which tests/integration/test_docs.py opens the site with
#
# The sources are docs/site/ (conf.py, antsibull-docs.cfg, rst/index.rst); the plugin pages are
# generated from the modules' and plugins' own documentation. Nothing is written into the
# checkout: the generated RST and Sphinx's caches live in a temporary directory.
# The venv is separate from the test venv (Sphinx and antsibull keep their pins out of
# ansible-lint's and Molecule's way) and keyed by docs/site/requirements.txt like tests/env/venv.sh:
# a change to that file makes a new one.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
site="$here/docs/site"
req="$site/requirements.txt"

docs_venv() {
  local key venv py
  key=$(sha256sum < "$req" | cut -c1-12)
  venv=${VIRTFLEET_DOCS_VENV:-$HOME/.cache/virtfleet/docs-venv-$key}
  if [ ! -x "$venv/bin/antsibull-docs" ] || [ ! -f "$venv/.complete" ]; then
    py=$(command -v python3.11 || command -v python3)
    if ! "$py" -c 'import ensurepip, venv' 2>/dev/null; then
      apt-get update -qq >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    fi
    mkdir -p "$(dirname "$venv")"
    # one builder at a time: a second caller waits, then finds the venv complete
    exec 8>"$venv.lock"
    flock 8
    if [ ! -x "$venv/bin/antsibull-docs" ] || [ ! -f "$venv/.complete" ]; then
      rm -rf "$venv"
      "$py" -m venv "$venv" >&2
      "$venv/bin/pip" install -q --upgrade pip >&2
      "$venv/bin/pip" install -q -r "$req" >&2
      touch "$venv/.complete"
    fi
    exec 8>&-
  fi
  echo "$venv"
}

# Only this checkout as a collection (and ansible.builtin): what is documented and what references
# may point to does not depend on collections installed elsewhere on the machine.
collection_env() {
  ANSIBLE_COLLECTIONS_PATH=$(bash "$here/tests/env/collection.sh")
  export ANSIBLE_COLLECTIONS_PATH ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false ANSIBLE_NOCOLOR=1
  export ANSIBLE_LOCAL_TEMP=${TMPDIR:-/tmp}
}

case "${1:-}" in
  --venv)
    docs_venv
    ;;
  --browser)
    if ! command -v chromium >/dev/null; then
      echo "[docs-site] installing chromium" >&2
      # wait for a dpkg lock another setup script holds instead of failing on it
      apt-get -o DPkg::Lock::Timeout=600 update -qq
      DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
        --no-install-recommends chromium >/dev/null
    fi
    command -v chromium
    ;;
  --lint)
    venv=$(docs_venv)
    export PATH="$venv/bin:$PATH"
    collection_env
    cd "$here"
    echo "antsibull-changelog lint"
    antsibull-changelog lint
    echo "antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml"
    antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml
    echo "CHANGELOG.rst is what changelogs/changelog.yaml generates"
    generated=$(mktemp "${TMPDIR:-/tmp}/virtfleet-changelog.XXXXXX")
    trap 'rm -f "$generated"' EXIT
    antsibull-changelog generate --output "$generated" --output-format rst
    diff -u CHANGELOG.rst "$generated" || {
      echo "CHANGELOG.rst is out of date: run antsibull-changelog generate (or release)" >&2
      exit 1
    }
    echo "antsibull-docs lint-collection-docs"
    # 'dependent' with unknown references refused: a reference to anything but this collection
    # and ansible.builtin (galaxy.yml has no dependencies) is an error.
    antsibull-docs lint-collection-docs --plugin-docs --check-extra-docs-refs \
      --validate-collection-refs dependent --disallow-unknown-collection-refs \
      "$ANSIBLE_COLLECTIONS_PATH/ansible_collections/virtfleet/virt"
    echo "docs lint: OK"
    ;;
  ''|-*)
    echo "usage: $0 OUTDIR | --lint | --venv" >&2
    exit 2
    ;;
  *)
    out=$1
    mkdir -p "$out"
    out=$(cd "$out" && pwd)
    venv=$(docs_venv)
    export PATH="$venv/bin:$PATH"
    collection_env
    work=$(mktemp -d "${TMPDIR:-/tmp}/virtfleet-docs-site.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    cp -r "$site/conf.py" "$site/antsibull-docs.cfg" "$site/ansible_devel.inv.txt" "$site/rst" "$work/"
    chmod -R u+w "$work"
    chmod og-w "$work/rst"  # antsibull-docs wants that directory writable by its owner only
    antsibull-docs --config-file "$work/antsibull-docs.cfg" collection --use-current \
      --fail-on-error --cleanup everything --dest-dir "$work/rst" virtfleet.virt
    sphinx-build -b html -c "$work" -d "$work/doctrees" -W --keep-going -q "$work/rst" "$out"
    echo "$out/index.html"
    ;;
esac
