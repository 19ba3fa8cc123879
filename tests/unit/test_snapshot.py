"""VM snapshots: the request, the tree logic, the snapshot XML and the libvirt driver through ``_reconcile.ensure``
with an in-memory client (what is refused before any write, what check mode predicts, when a revert is no change)."""
from __future__ import annotations

from xml.sax.saxutils import escape

import pytest

from ansible_collections.virtfleet.virt.plugins.module_utils import _reconcile as rc
from ansible_collections.virtfleet.virt.plugins.module_utils import _snapshot_spec as ss
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers import libvirt_snapshotxml as sx
from ansible_collections.virtfleet.virt.plugins.module_utils._drivers.libvirt_snapshot import LibvirtSnapshotDriver
from ansible_collections.virtfleet.virt.plugins.module_utils._errors import BackendError, NotFound, SpecError

QCOW2_DOMAIN = """<domain type='kvm'><name>web1</name><os><type>hvm</type></os><devices>
<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/img/web1.qcow2'/>
<target dev='vda'/></disk>
<disk type='file' device='cdrom'><driver name='qemu' type='raw'/><source file='/img/seed.iso'/>
<target dev='sda'/><readonly/></disk></devices></domain>"""


def entry(name, parent=None, current=False, created='2026-01-01T00:00:00Z', memory=False, location='internal',
          vm_state='stopped'):
    return dict(name=name, parent=parent, current=current, created=created, memory=memory, location=location,
                vm_state=vm_state, description=None, size=None, files=[])


def params(**extra):
    base = dict(vm='web1', name='s', state='present', memory=False, quiesce=False, description=None,
                children=False, vm_state=None, location='internal')
    base.update(extra)
    return base


# -- the request ---------------------------------------------------------------------------------

@pytest.mark.parametrize('extra, fragment', [
    (dict(name=''), 'name: must be a non-empty string'),
    (dict(name='a\nb'), 'name: must be a single line'),
    (dict(name='a\x01b'), 'name: contains the control character'),
    (dict(name=' a'), 'starts or ends with blanks'),
    (dict(name='x' * 256), 'the limit is 255'),
    (dict(vm='bad name'), 'vm:'),
    (dict(state='absent', memory=True), 'memory: has no effect with state: absent'),
    (dict(state='reverted', children=True), 'children: has no effect with state: reverted'),
    (dict(state='present', vm_state='running'), 'vm_state: has no effect with state: present'),
    (dict(state='absent', location='external'), 'location: is how a new snapshot is taken'),
])
def test_request_refuses(extra, fragment):
    with pytest.raises(SpecError) as err:
        ss.request_from_params(params(**extra))
    assert fragment in err.value.msg


def test_request_keeps_xml_metacharacters():
    assert ss.request_from_params(params(name="a<b>&'c"))['name'] == "a<b>&'c"


# -- the tree --------------------------------------------------------------------------------------

def tree():
    return [entry('c', 'a', created='2026-01-03T00:00:00Z', current=True), entry('a'),
            entry('b', 'a', created='2026-01-02T00:00:00Z'), entry('d', 'c', created='2026-01-04T00:00:00Z')]


def test_tree_order_puts_parents_first_and_siblings_by_time():
    assert [e['name'] for e in ss.tree_order(tree())] == ['a', 'b', 'c', 'd']
    assert ss.subtree(tree(), 'a') == ['d', 'c', 'b', 'a']  # deepest first
    assert ss.subtree(tree(), 'c') == ['d', 'c']


def test_after_create_is_a_child_of_the_current_one():
    after = ss.after_create(tree(), entry('e'))
    assert ss.find(after, 'e')['parent'] == 'c' and ss.current(after) == 'e'
    assert [e['name'] for e in after if e['current']] == ['e']


def test_after_delete_moves_children_up_or_removes_the_subtree():
    moved = ss.after_delete(tree(), 'c', children=False)
    assert ss.find(moved, 'd')['parent'] == 'a' and ss.current(moved) == 'a'
    gone = ss.after_delete(tree(), 'a', children=True)
    assert gone == [] and ss.current(ss.after_delete(tree(), 'b', children=False)) == 'c'


@pytest.mark.parametrize('memory, recorded, wanted, expected', [
    (False, 'stopped', None, 'stopped'), (True, 'running', None, 'running'), (True, 'paused', None, 'paused'),
    (True, 'running', 'stopped', 'stopped'), (False, 'running', None, 'stopped'), (False, 'stopped', 'running', 'running'),
])
def test_revert_state(memory, recorded, wanted, expected):
    assert ss.revert_state(entry('x', memory=memory, vm_state=recorded), wanted) == expected


# -- XML ---------------------------------------------------------------------------------------------

def test_render_escapes_names_and_descriptions():
    xml = sx.render("x</name><memory snapshot='external'/>&", 'a<b>', memory=False)
    root = sx._xml.from_string(xml)
    assert root.findtext('name') == "x</name><memory snapshot='external'/>&"
    assert [m.get('snapshot') for m in root.findall('memory')] == ['no']
    assert sx.render('m', memory=True).count('memory') == 0


def test_parse_reads_an_external_disk_only_snapshot():
    found = sx.parse("""<domainsnapshot><name>e</name><state>disk-snapshot</state><parent><name>p</name></parent>
        <creationTime>1796450328</creationTime><memory snapshot='no'/><disks>
        <disk name='vda' snapshot='external'><source file='/img/web1.qcow2.e'/></disk></disks></domainsnapshot>""")
    assert found['location'] == 'external' and not found['memory'] and found['parent'] == 'p'
    assert found['files'] == ['/img/web1.qcow2.e'] and found['vm_state'] == 'running'
    assert found['created'] == '2026-12-05T05:58:48Z'


def test_domain_facts_skip_read_only_disks_and_see_uefi():
    facts = sx.domain_facts(QCOW2_DOMAIN)
    assert facts == {'disks': [{'target': 'vda', 'format': 'qcow2', 'path': '/img/web1.qcow2'}], 'uefi': False}
    assert sx.domain_facts(QCOW2_DOMAIN.replace('<os>', "<os firmware='efi'>"))['uefi']
    assert sx.marked(sx.marker("a'<b")) == "a'<b" and sx.marked(None) is None


# -- the driver -----------------------------------------------------------------------------------

class Snap:
    def __init__(self, item):
        self.item = item

    def getName(self):
        return self.item['name']


class Dom:
    def name(self):
        return 'web1'


class FakeClient:
    """VM web1 with the snapshots given (entries), in power state ``state``; records every write."""

    def __init__(self, entries=(), state='stopped', xml=QCOW2_DOMAIN, reverted_since_run=False, marker=None,
                 agent=False):
        self.entries = [dict(e) for e in entries]
        self.state, self.xml, self.reverted, self.marker, self.agent = state, xml, reverted_since_run, marker, agent
        self.writes = []
        self.create_error = None
        self.paused_by = None  # the job that left the VM paused (domain_paused_by_job)

    def lookup_domain(self, name):
        if name != 'web1':
            raise NotFound('no VM %s' % name)
        return Dom()

    def list_snapshots(self, _dom):
        return [Snap(e) for e in self.entries]

    def snapshot_xml(self, snap):
        item = snap.item
        parent = '<parent><name>%s</name></parent>' % escape(item['parent']) if item['parent'] else ''
        disk = "<disk name='vda' snapshot='%s'/>" % item['location']
        state = {'stopped': 'shutoff'}.get(item['vm_state'], item['vm_state'])
        memory = 'internal' if item['memory'] else 'no'
        return ("<domainsnapshot><name>%s</name><state>%s</state>%s<creationTime>1</creationTime>"
                "<memory snapshot='%s'/><disks>%s</disks></domainsnapshot>"
                % (escape(item['name']), state, parent, memory, disk))

    def snapshot_is_current(self, snap):
        return snap.item['current']

    def domain_reverted_since_run(self, _dom):
        return self.reverted

    def domain_paused_by_job(self, _dom):
        return self.paused_by

    def domain_metadata(self, _dom, _uri):
        return sx.marker(self.marker) if self.marker else None

    def domain_state(self, _dom):
        return self.state

    def domain_xml(self, _dom, inactive=False):
        return self.xml

    def guest_agent_fs_info(self, _dom):
        if not self.agent:
            raise BackendError('asking the guest agent of VM web1 failed: argument unsupported: QEMU guest agent is '
                               'not configured')
        return []

    def lookup_snapshot(self, _dom, name):
        return Snap(ss.find(self.entries, name))

    def create_snapshot(self, _dom, xml, disk_only=False, quiesce=False):
        self.writes.append(('create', xml, disk_only, quiesce))
        if self.create_error:
            raise BackendError(self.create_error)
        new = sx.parse(xml)
        self.entries = ss.after_create(self.entries, dict(new, location='external' if disk_only else 'internal',
                                                          vm_state=self.state, size=None))
        return Snap(ss.find(self.entries, new['name']))

    def revert_snapshot(self, _dom, snap, run=None):
        self.writes.append(('revert', snap.getName(), run))

    def delete_snapshot(self, snap, metadata_only=False):
        self.writes.append(('delete', snap.getName(), metadata_only))

    def destroy_domain(self, _dom):
        self.writes.append(('destroy',))

    def set_domain_metadata(self, _dom, xml, key, uri, live=False):
        self.writes.append(('marker', sx.marked(xml), live))


def run(client, check=False, **extra):
    driver = LibvirtSnapshotDriver(client, ss.request_from_params(params(**extra)))
    return rc.ensure(driver, driver.request['vm'], None, 'present', None, rc.Options(check_mode=check))


def test_check_mode_predicts_a_new_snapshot_and_writes_nothing():
    client = FakeClient([entry('a', current=True)])
    outcome, before, after = run(client, check=True, name='b')
    assert outcome.changed and outcome.actions == ['updated: snapshots', 'created snapshot b']
    assert client.writes == []
    assert [(e['name'], e['parent'], e['current']) for e in after['spec']['snapshots']] == [
        ('a', None, False), ('b', 'a', True)]
    assert [e['name'] for e in before['spec']['snapshots']] == ['a']


def test_an_existing_snapshot_is_no_change_whatever_it_was_taken_with():
    client = FakeClient([entry('a', current=True)])
    outcome, _before, _after = run(client, name='a', description='other')
    assert not outcome.changed and client.writes == []
    assert 'kept as it is' in outcome.warnings[0] and outcome.extra['snapshot']['name'] == 'a'


def test_create_writes_escaped_xml():
    client = FakeClient()
    outcome, _before, after = run(client, name="p<&>'")
    assert outcome.changed and client.writes[0][0] == 'create'
    assert sx._xml.from_string(client.writes[0][1]).findtext('name') == "p<&>'"
    assert after['spec']['current'] == "p<&>'"


def test_a_vm_left_paused_by_an_interrupted_job_is_said_so():
    client = FakeClient(state='paused')
    client.paused_by = 'save'
    outcome, _before, _after = run(client, name='after', memory=True)
    assert outcome.changed and client.writes[0][0] == 'create'
    assert [w for w in outcome.warnings if 'paused by an interrupted save job' in w], outcome.warnings
    client = FakeClient(state='paused')
    outcome, _before, _after = run(client, name='after', memory=True)
    assert outcome.changed and not outcome.warnings


@pytest.mark.parametrize('client, extra, fragment', [
    (FakeClient(xml=QCOW2_DOMAIN.replace("type='qcow2'", "type='raw'")), {}, 'location: disk vda'),
    (FakeClient(xml=QCOW2_DOMAIN.replace('<os>', "<os firmware='efi'>")), {}, 'boots with UEFI'),
    (FakeClient(state='running'), {}, 'must include the memory state'),
    (FakeClient(), dict(memory=True), 'is stopped: it has no memory state'),
    (FakeClient(state='crashed'), {}, 'vm: VM web1 is crashed'),
    (FakeClient(state='running'), dict(location='external', quiesce=True), 'no QEMU guest agent answers'),
    (FakeClient(state='running'), dict(memory=True, quiesce=True), 'external disk-only snapshots only'),
    (FakeClient(), dict(quiesce=True, location='external'), 'is stopped: there is no guest to quiesce'),
    (FakeClient(), dict(name='a/b'), 'contains "/"'),
    (FakeClient(), dict(name='a\\b'), 'double quote or a backslash'),
    (FakeClient(state='running'), dict(location='external', memory=True), 'taken disk-only here'),
    (FakeClient([entry('a')]), dict(name='b', state='reverted'), "no snapshot 'b' to revert to (its snapshots: 'a')"),
    (FakeClient([entry('e', location='external')]), dict(name='e', state='reverted'),
     'libvirt 9.0 cannot revert external snapshots'),
    (FakeClient([entry('q"')]), dict(name='q"', state='reverted'), 'double quote'),
])
def test_refused_before_any_write(client, extra, fragment):
    for check in (True, False):
        with pytest.raises(SpecError) as err:
            run(client, check=check, **dict(dict(name='s'), **extra))
        assert fragment in err.value.msg and client.writes == []


@pytest.mark.parametrize('error, hint', [
    ('taking a snapshot of VM web1 failed: operation failed: Failed to take snapshot: Error: Error while writing VM '
     'state: Input/output error\r\n', True),
    ('taking a snapshot of VM web1 failed: operation failed: domain is not running', False),
])
def test_a_failed_memory_state_write_names_the_likely_full_filesystem(error, hint):
    client = FakeClient(state='running')
    client.create_error = error
    with pytest.raises(BackendError) as err:
        run(client, memory=True)
    if hint:
        assert err.value.msg.startswith(error.strip() + '. QEMU could not write the memory of VM web1')
        assert 'full filesystem under that disk' in err.value.msg and '/img/web1.qcow2' in err.value.msg
        assert 'libvirt took no snapshot' in err.value.msg
    else:
        assert err.value.msg == error


def test_unknown_vm_is_refused():
    with pytest.raises(SpecError) as err:
        run(FakeClient(), vm='web2')
    assert 'there is no VM named web2' in err.value.msg


def test_quiesced_external_snapshot_with_an_agent():
    client = FakeClient(state='running', agent=True)
    outcome, _b, _a = run(client, location='external', quiesce=True)
    assert outcome.changed and client.writes[0][2:] == (True, True)


@pytest.mark.parametrize('reverted, marker, state, changed', [
    (True, 'a', 'stopped', False),    # shut off from the revert, current, marked: still there
    (False, 'a', 'stopped', True),    # it ran (and stopped) since
    (True, None, 'stopped', True),    # reverted by someone else: not known
    (True, 'b', 'stopped', True),     # the marked snapshot is gone, its parent became current
])
def test_reverted_is_no_change_only_when_provably_at_the_snapshot(reverted, marker, state, changed):
    client = FakeClient([entry('a', current=True)], state=state, reverted_since_run=reverted, marker=marker)
    outcome, _b, after = run(client, name='a', state='reverted')
    assert outcome.changed == changed
    if changed:
        assert client.writes == [('revert', 'a', None), ('marker', 'a', False)]
    else:
        assert client.writes == [] and after['spec']['at_snapshot'] == 'a'


def test_revert_of_a_memory_snapshot_to_stopped_pauses_then_powers_off():
    client = FakeClient([entry('m', current=True, memory=True, vm_state='running')], state='running')
    outcome, _b, after = run(client, check=True, name='m', state='reverted', vm_state='stopped')
    assert outcome.changed and after['state'] == 'stopped' and client.writes == []
    run(client, name='m', state='reverted', vm_state='stopped')
    assert client.writes == [('revert', 'm', 'paused'), ('destroy',), ('marker', 'm', False)]


def test_delete_with_children_goes_deepest_first_and_external_records_only():
    client = FakeClient([entry('a'), entry('b', 'a', location='external', current=True)])
    outcome, _b, after = run(client, check=True, name='a', state='absent', children=True)
    assert after['spec']['snapshots'] == [] and client.writes == []
    assert outcome.actions == ['updated: snapshots', 'deleted snapshot a and the snapshots below it: b']
    outcome, _b, _a = run(client, name='a', state='absent', children=True)
    assert client.writes == [('delete', 'b', True), ('delete', 'a', False)]
    assert 'only its record was removed' in outcome.warnings[0]


def test_absent_on_a_missing_snapshot_is_ok():
    client = FakeClient([entry('a')])
    outcome, _b, _a = run(client, name='zz', state='absent')
    assert not outcome.changed and client.writes == [] and outcome.extra['snapshot'] == {}


@pytest.mark.parametrize('state, reverted, predicted', [
    ('running', False, 'a'),   # the revert stops it: libvirt says "from snapshot"
    ('stopped', True, 'a'),    # shut off "from snapshot" since an earlier revert: it keeps that reason
    ('stopped', False, None),  # shut off for another reason: libvirt keeps that reason, so it cannot be known
])
def test_check_mode_predicts_whether_the_revert_can_be_proven_later(state, reverted, predicted):
    client = FakeClient([entry('a'), entry('b', 'a', current=True)], state=state, reverted_since_run=reverted)
    outcome, _b, after = run(client, check=True, name='a', state='reverted')
    assert outcome.changed and after['spec']['at_snapshot'] == predicted and after['state'] == 'stopped'
