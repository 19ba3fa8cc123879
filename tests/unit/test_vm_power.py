"""LibvirtVMDriver power actions against a fake libvirt client."""
from __future__ import annotations

import pytest

from ansible_collections.virtfleet.virt.plugins.module_utils import _reconcile as rc
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.libvirt_vm import LibvirtVMDriver
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import BackendError

RESET = ("resuming VM vm1 failed: internal error: unable to execute QEMU command 'cont': "
         "Resetting the Virtual Machine is required")


class Dom:
    def name(self):
        return 'vm1'


class PausedClient:
    """A VM that QEMU stopped on an internal error: libvirt says paused, and 'cont' is refused (fuzz fleet #137)."""

    def __init__(self, start_fails=False):
        self.dom = Dom()
        self.state = 'paused'
        self.calls = []
        self.start_fails = start_fails

    def lookup_domain(self, name):
        return self.dom

    def domain_state(self, dom):
        return self.state

    def domain_crashed(self, dom):
        return False

    def resume_domain(self, dom):
        self.calls.append('resume')
        raise BackendError(RESET)

    def destroy_domain(self, dom):
        self.calls.append('destroy')
        self.state = 'stopped'

    def start_domain(self, dom, paused=False):
        self.calls.append('start')
        if self.start_fails:
            raise BackendError('starting VM vm1 failed: no')
        self.state = 'running'


def test_a_paused_vm_that_needs_a_reset_is_powered_off_and_started():
    client = PausedClient()
    outcome = rc.Outcome()
    rc._run_steps(LibvirtVMDriver(client), 'vm1', LibvirtVMDriver(client).steps('paused', 'running'),
                  rc.Options(poll_interval=0.01), outcome)
    assert client.calls == ['resume', 'destroy', 'start'] and client.state == 'running'
    assert outcome.changed and outcome.actions[0].startswith('destroy (it could not be resumed: ')
    assert outcome.actions[1:] == ['start', 'resume']
    assert 'it was powered off and started again' in outcome.warnings[0]


def test_a_failed_start_after_the_reset_reports_the_power_off():
    client = PausedClient(start_fails=True)
    outcome = rc.Outcome()
    with pytest.raises(BackendError):
        rc._run_steps(LibvirtVMDriver(client), 'vm1', LibvirtVMDriver(client).steps('paused', 'running'),
                      rc.Options(poll_interval=0.01), outcome)
    assert client.calls == ['resume', 'destroy', 'start']
    assert outcome.changed and len(outcome.actions) == 1 and outcome.actions[0].startswith('destroy')


def test_other_resume_errors_are_raised_as_they_are():
    client = PausedClient()

    def resume_domain(dom):
        raise BackendError('resuming VM vm1 failed: other')

    client.resume_domain = resume_domain
    with pytest.raises(BackendError) as err:
        LibvirtVMDriver(client).perform('vm1', 'resume')
    assert err.value.msg == 'resuming VM vm1 failed: other' and client.calls == []
