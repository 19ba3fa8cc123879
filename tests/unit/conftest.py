# Make ``ansible_collections.virtfleet.virt`` importable from this checkout for pytest.
from __future__ import annotations

import hashlib
import os
import sys

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _collections_root():
    root = os.environ.get('VIRTFLEET_COLLECTIONS_PATH')
    if root:
        return root
    # the same per-checkout directory as tests/env/collection.sh
    root = '/tmp/virtfleet-collections-' + hashlib.sha256(_REPO.encode()).hexdigest()[:12]
    link = os.path.join(root, 'ansible_collections', 'virtfleet', 'virt')
    os.makedirs(os.path.dirname(link), exist_ok=True)
    if os.path.realpath(link) != _REPO:
        if os.path.islink(link):
            os.unlink(link)
        os.symlink(_REPO, link)
    return root


sys.path.insert(0, _collections_root())
