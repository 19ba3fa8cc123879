# Make ``ansible_collections.virtfleet.virt`` importable from this checkout for pytest.
from __future__ import annotations

import os
import sys
import tempfile

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _collections_root():
    root = os.environ.get('VIRTFLEET_COLLECTIONS_PATH')
    if root:
        return root
    root = os.path.join(tempfile.gettempdir(), 'virtfleet-collections')
    link = os.path.join(root, 'ansible_collections', 'virtfleet', 'virt')
    os.makedirs(os.path.dirname(link), exist_ok=True)
    if os.path.realpath(link) != _REPO:
        if os.path.islink(link):
            os.unlink(link)
        os.symlink(_REPO, link)
    return root


sys.path.insert(0, _collections_root())
