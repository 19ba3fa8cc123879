"""The SDK clients' connection: one per client, also when fleet's threads ask for it at the same time."""
from __future__ import annotations

import threading
import time

import pytest

from ansible_collections.virtfleet.virt.plugins.module_utils._clients import libvirt as lv

pytest.importorskip('libvirt')


def _race(read, threads=8):
    """``read()`` from ``threads`` threads released at once; what each got."""
    start = threading.Barrier(threads)
    seen = []

    def use():
        start.wait()
        seen.append(read())

    started = [threading.Thread(target=use) for unused in range(threads)]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join()
    return seen


def test_threads_share_one_connection(monkeypatch):
    """A second connection opened by a racing thread made libvirt refuse a volume download (the stream on one
    connection, the volume looked up on the other: cloud_fleet_remove.yml's fleet task failed that way)."""
    opened = []

    def slow_open(self):
        time.sleep(0.05)  # the window in which another thread finds no connection yet
        opened.append(object())
        return opened[-1]

    monkeypatch.setattr(lv.LibvirtClient, '_open', slow_open)
    client = lv.LibvirtClient('qemu:///system')
    seen = _race(lambda: client.conn)
    assert len(opened) == 1 and seen == opened * 8


def test_vsphere_threads_share_one_session(monkeypatch):
    """The vSphere client alike: one log-in, and no thread sees the session before its service content."""
    pytest.importorskip('pyVmomi')
    from ansible_collections.virtfleet.virt.plugins.module_utils._clients import vsphere as vs

    sessions = []

    class Session:
        def RetrieveContent(self):  # noqa: N802 - pyVmomi's name
            time.sleep(0.05)
            return self

    def slow_connect(self):
        time.sleep(0.05)
        sessions.append(Session())
        return sessions[-1]

    monkeypatch.setattr(vs.VSphereClient, '_connect', slow_connect)
    client = vs.VSphereClient('vcenter.example.com', username='u', password='p')
    seen = _race(lambda: client.content)
    assert len(sessions) == 1 and seen == sessions * 8
