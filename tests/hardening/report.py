"""Write docs/reliability.md from a fuzz run's JSON (tests/hardening/fuzz.py) and the fault tests' records.

    /tmp/vf/bin/python tests/hardening/report.py /var/tmp/virtfleet-fuzz.json \\
        --faults /var/tmp/vft-hardening [--out docs/reliability.md]

``--faults`` is the directory the hardening integration tests wrote to when run with
``VIRTFLEET_HARDENING_OUT`` set (faults.json, concurrency.json, secrets.json); without it, the
report lists the fault tests without their last outcomes.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import statistics

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

# modules of the storage and migration work: their bugs are listed, not fixed, here
HANDED_OVER = ('storage_pool', 'volume', 'cloud_init_seed', 'migrate', 'storage_pool_info', 'volume_info')

FAULT_TESTS = [
    ('libvirtd killed during a fleet converge', 'test_hardening_faults.py::test_libvirtd_killed_during_fleet_converge'),
    ('QEMU process of a running VM killed',
     'test_hardening_faults.py::test_qemu_killed_state_running_starts_it_again_and_says_so'),
    ('pool filesystem full during a volume create',
     'test_hardening_faults.py::test_pool_filesystem_full_during_volume_create'),
    ('vCenter simulator stopped during a task', 'test_hardening_faults.py::test_vcsim_stopped_during_a_task'),
]

FIXED = [
    ('A number or boolean for an option with sub-options (`cpu: 2`, `ipv4: 1`, a fleet item\'s `graphics: true`) '
     'crashed ansible-core\'s own argument validation with a `TypeError` traceback (MODULE FAILURE through '
     'ansible-playbook).',
     '`_module.checked_spec()` gives ansible-core a copy of the spec without the sub-options of such an option, '
     'so it refuses the value with its usual message (vm, network); fleet refuses such an item by itself; '
     '`tests/unit/test_hardening_drivers.py`, `test_hardening_fuzz.py::test_found_by_fuzzing_clear_failures`, '
     '`::test_a_number_for_a_dict_option_is_a_message_not_module_failure`'),
    ('A NUL character reached libvirt-python (uri, a name filter) or `subprocess` (podman arguments), which raised '
     '`ValueError`: a traceback.',
     'the libvirt client turns it into a clear error (`_call`, `_open`), the podman client too; '
     '`test_found_by_fuzzing_clear_failures`, `::test_container_arguments_podman_cannot_take_are_refused`'),
    ('A control character in a VM string no check covered (arch, machine, cpu.model, disk and serial paths, '
     'interface sources...) made lxml raise `ValueError` while the definition was built: a traceback.',
     '`_vm_spec.partial_from_params` checks every string of the spec and names the option; '
     '`test_found_by_fuzzing_clear_failures`'),
    ('Changing a disk\'s bus (usb or sata to virtio) kept its old `<address>`; libvirt refused the definition '
     '("virtio disk cannot have an address of type \'usb\'").',
     '`libvirt_domxml.disk_element` drops the address when the bus changes; `tests/unit/test_domxml.py`, '
     '`test_hardening_fuzz.py::test_moving_a_disk_to_the_virtio_bus_keeps_no_usb_address`'),
    ('`interfaces[].bridge`/`direct` such as `../../../tmp` passed the "host interface exists" check '
     '(`/sys/class/net/<name>` resolved outside it).',
     'host interface names are checked as the kernel does (no `/`, `:`, white space, `.`/`..`, 15 characters); '
     '`tests/unit/test_vm_spec.py`'),
    ('Names, MAC addresses, disk targets, bridge and container/network names with a trailing newline passed the '
     'regular expressions (`$` matches before a final newline); libvirt refused them with its own words.',
     '`\\Z` in `_vm_spec`, `_network_spec`, `_container_spec`; unit tests'),
    ('A container image such as `--privileged` went to podman as an option (`podman image inspect --privileged`).',
     'refused as "not an image reference"; `tests/unit/test_container_spec.py`'),
    ('A container on network host or none given `ports` was recreated on every run (podman discards the port '
     'mappings of such a container, so they never matched).',
     'refused with a message naming ports and the network; '
     '`test_hardening_fuzz.py::test_ports_on_a_host_network_container_are_refused_not_recreated_forever`'),
    ('A container started by the run that exited at once ("stopped right after it started") was reported '
     '`changed: false`, though the run had started it.',
     'the podman driver marks the start as performed; the reconcile loop counts performed actions '
     '(`tests/unit/test_reconcile.py`)'),
    ('Two runs at once: "domain is already running" (or "resuming ... already running": the other run\'s start '
     'was under way), "network ... already exists with uuid", "there is an existing dhcp host entry", an object '
     'removed meanwhile in a listing ("Network not found" while checking subnet overlaps, vm_info/network_info '
     'listings): the run failed.',
     'the reconcile loop treats "already exists" (typed: `exists=True` from the clients), a state another run '
     'reached, an update another run made and a removal another run did as the outcomes they are, with a '
     'warning; new domains and networks get a UUID of their own so that a racing definition fails "already '
     'exists" instead of being merged; listings skip objects removed while read; '
     '`tests/unit/test_reconcile.py`, `tests/unit/test_hardening_drivers.py`, '
     '`test_hardening_concurrency.py`'),
    ('`boot: []` rewrote the VM on every run (`changed: true` forever): libvirt gives a VM without a boot '
     'order `<boot dev=\'hd\'/>`.',
     'refused with a message (at least one device; leave boot out to keep the order); '
     '`tests/unit/test_vm_spec.py`, `test_found_by_fuzzing_clear_failures`'),
    ('A VM whose QEMU process died was started again silently (`actions: [start]` only).',
     'the start (or power-off of a crashed VM) warns "VM ... had crashed ...; it was started again"; '
     '`test_hardening_faults.py::test_qemu_killed_state_running_starts_it_again_and_says_so`'),
    ('`--diff` on the kvm_host role printed the TLS server private key (ansible.builtin.copy shows text files).',
     '`diff: false` on that task; `test_hardening_secrets.py::test_the_kvm_host_role_shows_no_diff_of_the_tls_'
     'private_key`'),
]

NOT_FIXED = [
    ('storage_pool: a number for `source` or `source.auth` (`source: 1`) crashes ansible-core\'s argument '
     'validation (traceback, MODULE FAILURE).',
     '`{"ANSIBLE_MODULE_ARGS": {"name": "vft-x", "source": 1.5}}` | python -m ...plugins.modules.storage_pool',
     'use `_module.checked_spec(argument_spec())` in storage_pool.py as vm/network do'),
    ('storage_pool: a logical pool given a `path` other than /dev/<volume group> reports `changed: true` '
     '("updated: path") and rewrites its definition on every run: libvirt sets the target path of a logical '
     'pool to /dev/<source.name> whatever was asked.',
     'storage_pool `{name: vft-x, type: logical, path: /var/lib/x}` twice: the second run says changed, '
     'updated: path (the pool is defined, nothing is built)',
     'refuse a path other than /dev/<source.name> for logical pools (or take that path as the default and '
     'compare it so)'),
    ('storage_pool, volume, cloud_init_seed: pool and volume names with a trailing newline pass '
     '`_storage_spec.POOL_NAME_RE`/`VOLUME_NAME_RE` (`$`); libvirt then refuses them in its own words.',
     '`volume` with `pool: "images\\n"`', '`\\Z` instead of `$` in `_storage_spec.py`'),
]


def summarize(target):
    records = target.get('records') or []
    outcomes = collections.Counter(r['outcome'] for r in records)
    modes = collections.Counter(r['mode'] for r in records)
    seconds = [r['seconds'] for r in records] or [0]
    return {
        'sets': len(records), 'playbook': sum(1 for r in records if r['via'] == 'playbook'),
        'valid': modes.get('valid', 0), 'one_bad': modes.get('one_bad', 0), 'chaos': modes.get('chaos', 0),
        'ok': outcomes.get('ok', 0), 'failed': outcomes.get('failed', 0),
        'after_change': outcomes.get('failed_after_change', 0), 'changed': sum(1 for r in records if r['changed']),
        'check': sum(1 for r in records if r['check']), 'reruns': sum(1 for r in records if 'rerun' in r),
        'problems': sum(1 for r in records if r['problems']),
        'median': statistics.median(seconds), 'max': max(seconds),
    }


def _cell(text):
    return str(text).replace('|', '\\|').replace('\n', ' ')


def render(fuzz, faults_dir):
    lines = []
    add = lines.append
    add('# Reliability report')
    add('')
    add('Generated by `tests/hardening/report.py` from a seeded fuzz run (`tests/hardening/fuzz.py`) and the '
        'records of the fault, concurrency and secrets tests; do not edit by hand. Issue 8.')
    add('')
    add('Run: %s; seed %s; %s argument sets per module requested; every %sth set through `ansible-playbook`, '
        'the others through the module itself as Ansible runs it (a child process of the venv\'s python, '
        'arguments in a file); %.0f minutes of runs, several modules at a time, on a machine shared with other '
        'test runs. %s; %s.'
        % (fuzz.get('finished'), fuzz.get('seed'), fuzz.get('per_module'), fuzz.get('playbook_every'),
           fuzz.get('seconds', 0) / 60.0, fuzz.get('platform'),
           ', '.join('%s %s' % kv for kv in sorted((fuzz.get('versions') or {}).items()))))
    if fuzz.get('rerun'):
        add('')
        add('%s ran again, with the same seed, after fixes the first run led to (listed below); their results '
            'replace the first run\'s.' % ', '.join(fuzz['rerun']))
    add('')
    add('## Fuzzed arguments')
    add('')
    add('Argument sets are generated by hypothesis from each module\'s own argument spec (captured from its '
        '`main()`): six in ten *valid* (values from the spec\'s types and choices, names and paths of the run\'s '
        'own objects), three in ten with *one* problem (a wrong type, an out-of-range integer, an unknown '
        'choice, XML or shell metacharacters, unicode, an over-long string, an unknown option or a missing '
        'required one), one in ten *chaos* (many). Two in ten run in check mode, three in ten with `--diff`; a '
        'quarter of the successful changing sets run a second time, which must report no change. For every '
        'set: the result is one JSON object with a `msg` when it failed, never a traceback (`exception` only '
        'for a missing library); a call that reports `changed: false` -- a failure included -- and every '
        'check-mode call leave the daemon\'s state as it was (the domains, networks, pools and volumes, Podman '
        'containers, volumes and networks, or vSphere VMs of the run, read before and after each call); the '
        'call ends within its bound (120 s, 180 s for fleet); no secret it was given appears in its output.')
    add('')
    add('| module | sets | via playbook | valid / one bad / chaos | ok | failed cleanly | failed after a reported '
        'change | changed | check mode | idempotence re-runs | invariant violations | median s | max s |')
    add('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
    totals = collections.Counter()
    for target in fuzz['targets']:
        if target.get('error'):
            add('| %s | worker failed: %s |||||||||||| ' % (target['target'], _cell(target['error'])))
            continue
        s = summarize(target)
        for key in ('sets', 'playbook', 'ok', 'failed', 'after_change', 'changed', 'check', 'reruns', 'problems'):
            totals[key] += s[key]
        add('| %s | %d | %d | %d / %d / %d | %d | %d | %d | %d | %d | %d | %d | %.2f | %.1f |'
            % (target['target'], s['sets'], s['playbook'], s['valid'], s['one_bad'], s['chaos'], s['ok'],
               s['failed'], s['after_change'], s['changed'], s['check'], s['reruns'], s['problems'], s['median'],
               s['max']))
    add('| **all** | **%d** | %d | | %d | %d | %d | %d | %d | %d | **%d** | | |'
        % (totals['sets'], totals['playbook'], totals['ok'], totals['failed'], totals['after_change'],
           totals['changed'], totals['check'], totals['reruns'], totals['problems']))
    add('')
    add('`vm@vsphere` is the vm module against a vCenter simulator of the run\'s own (govmomi\'s vcsim); '
        '`container*` run against Podman, the rest against libvirtd.')
    add('')
    problems = [(t['target'], r) for t in fuzz['targets'] for r in t.get('records') or [] if r['problems']]
    add('### Invariant violations')
    add('')
    if not problems:
        add('None.')
    elif any(key in HANDED_OVER for key, _record in problems):
        add('Those of %s come from the bugs handed over to the storage and migration work (last section).'
            % ', '.join(sorted(set(key for key, _record in problems if key in HANDED_OVER))))
        add('')
    for key, record in problems[:40]:
        add('- %s #%d (%s, %s): %s; msg: %s; args: `%s`'
            % (key, record['index'], record['via'], record['mode'], '; '.join(record['problems']),
               _cell(record.get('msg') or '')[:300], _cell(json.dumps(record.get('args'), ensure_ascii=False))[:400]))
    add('')
    add('### Failures after a reported change')
    add('')
    add('A call may fail after it changed something it could not check beforehand; it then says so '
        '(`changed: true`, `actions`). What happened in this run, by module and first words of the message:')
    add('')
    for target in fuzz['targets']:
        after = collections.Counter(' '.join((r.get('msg') or '').split()[:9]) for r in target.get('records') or []
                                    if r['outcome'] == 'failed_after_change')
        for msg, count in after.most_common(4):
            add('- %s (%d): %s...' % (target['target'], count, _cell(msg)))
    add('')
    add('### What the refusals say (most frequent per module)')
    add('')
    for target in fuzz['targets']:
        refusals = collections.Counter(' '.join((r.get('msg') or '').split()[:12]) for r in target.get('records') or []
                                       if r['outcome'] == 'failed')
        shown = ['"%s..." (%d)' % (_cell(m), n) for m, n in refusals.most_common(3)]
        add('- **%s**: %s' % (target['target'], '; '.join(shown)))
    add('')

    add('## Injected faults')
    add('')
    faults = _load(faults_dir, 'faults.json') or {}
    add('| fault | test | outcome |')
    add('| --- | --- | --- |')
    for name, test in FAULT_TESTS:
        record = faults.get(name)
        outcome = ('%s. %s (%s)' % (record['fault'], record['outcome'], record['recorded'])) if record else \
            'not recorded in this report\'s inputs (run the test with VIRTFLEET_HARDENING_OUT set)'
        add('| %s | `tests/integration/%s` | %s |' % (name, test, _cell(outcome)))
    add('| destination lost during a migration | `tests/integration/test_migrate.py::test_failures_mid_migration_'
        'leave_the_guest_running_on_the_source` | the destination\'s libvirtd is killed while the disk is copied, '
        'then a migration runs out of its timeout: each time a clear failure, the guest keeps running (and '
        'counting) on the source with its disk intact; then the migration succeeds (migration issue) |')
    add('')
    add('## Concurrent runs')
    add('')
    conc = _load(faults_dir, 'concurrency.json')
    add('`tests/integration/test_hardening_concurrency.py`: two `ansible-playbook` runs start at the same moment, '
        'one converging three VMs with `fleet`, the other three VMs (two of them the same) with `vm` tasks, both '
        'the same network and two of the same volumes (plus one each); then both change memory, DHCP hosts and '
        'volume sizes at once. Both finish without a failed task; afterwards each VM, the network and each '
        'volume exist once with the spec both asked for, and a third run changes nothing.')
    if conc:
        add('Last recorded run: %d rounds, %d races met and converged (warnings such as: %s).'
            % (conc['rounds'], conc['race_warnings'], '; '.join('"%s"' % e for e in conc['examples']) or 'none'))
    add('')
    add('## Secrets and injection')
    add('')
    sec = _load(faults_dir, 'secrets.json')
    add('`tests/integration/test_hardening_secrets.py`: the vSphere password (option, and VMWARE_PASSWORD), the '
        'libvirt password (option, and VIRTFLEET_PASSWORD), cloud-init passwords and SSH keys in `user_data` (a '
        'string and a dict, then a change shown by `--diff`) and the migration destination\'s password go '
        'through successful and failing runs under `ansible-playbook -vvv --diff`; the whole output and the '
        'registered results are searched for each secret and its distinctive core.%s No module takes a TLS key '
        'passphrase; the kvm_host role copies key files by path (with `diff: false`). A secret given through a '
        'task\'s `environment:` keyword is printed by ansible-playbook -vvv itself (its EXEC lines): pass secrets '
        'as module options (they are `no_log`) or in the controller\'s environment.'
        % ((' Last run: %d secrets, %d tasks, %d bytes of output, %d leaks.'
            % (sec['secrets'], sec['tasks'], sec['output_bytes'], sec['leaks'])) if sec else ''))
    add('')
    add('Injection: titles, descriptions and tags with XML and shell metacharacters, Jinja, format strings, '
        'unicode (bidi controls included) are stored exactly (read back from libvirt\'s XML; no element injected); '
        'container environment values and labels exactly as given, the command split without a shell (a marker '
        'file the payloads would create stays absent); names with metacharacters, over-long values, newlines in '
        'a title and control characters are refused with a message naming the option.')
    add('')
    add('## Bugs found and fixed')
    add('')
    for found, fix in FIXED:
        add('- %s Fix: %s.' % (found, fix))
    add('')
    add('## Found in the storage and migration work (not fixed here; handed over)')
    add('')
    for found, repro, fix in NOT_FIXED:
        add('- %s Reproduce: %s. Suggested fix: %s.' % (found, repro, fix))
    add('')
    add('## How to rerun')
    add('')
    add('```sh')
    add('bash tests/env/libvirt-up.sh && venv=$(bash tests/env/venv.sh)')
    add('# the quick slice (12 sets per module) and the fault, concurrency and secrets tests: part of ./tests/run.sh')
    add('VIRTFLEET_VENV_DIR=$venv $venv/bin/python -m pytest tests/integration/test_hardening_*.py')
    add('# the full run (about an hour on 2 cores), then this report')
    add('VIRTFLEET_VENV_DIR=$venv $venv/bin/python tests/hardening/fuzz.py --per-module 1000 --seed %s \\'
        % fuzz.get('seed'))
    add('    --out /var/tmp/vft-hardening/fuzz-1000.json')
    add('VIRTFLEET_VENV_DIR=$venv VIRTFLEET_HARDENING_OUT=/var/tmp/vft-hardening $venv/bin/python -m pytest \\')
    add('    tests/integration/test_hardening_faults.py tests/integration/test_hardening_concurrency.py \\')
    add('    tests/integration/test_hardening_secrets.py')
    add('$venv/bin/python tests/hardening/report.py /var/tmp/vft-hardening/fuzz-1000.json '
        '--faults /var/tmp/vft-hardening')
    add('```')
    add('')
    add('`--modules vm,network` runs some modules only; `VIRTFLEET_FUZZ_PER_MODULE` and `VIRTFLEET_FUZZ_SEED` '
        'change the slice in pytest. The same seed generates the same argument sets with the same code and '
        'hypothesis version; the fuzzer touches only objects named `vft-fz-<module>-<run id>-...` and its own '
        'directory under /var/lib/virtfleet-test/fuzz, and removes them at the end. The libvirtd fault test is '
        'skipped while another libvirtd runs (tests/env/twohost-up.sh): tests/env/libvirt-up.sh would take it '
        'for the root one and not restart it.')
    add('')
    return '\n'.join(lines)


def _load(directory, name):
    if not directory:
        return None
    try:
        with open(os.path.join(directory, name)) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('fuzz_json', nargs='+',
                        help='fuzz.py results; a later file\'s modules replace an earlier one\'s (to rerun some only)')
    parser.add_argument('--faults', help='directory with faults.json, concurrency.json, secrets.json')
    parser.add_argument('--out', default=os.path.join(REPO, 'docs', 'reliability.md'))
    args = parser.parse_args(argv)
    fuzz = None
    for path in args.fuzz_json:
        with open(path) as handle:
            data = json.load(handle)
        if fuzz is None:
            fuzz = data
            continue
        replaced = dict((t['target'], t) for t in data['targets'])
        fuzz.setdefault('rerun', []).extend(sorted(replaced))
        fuzz['targets'] = [replaced.pop(t['target'], t) for t in fuzz['targets']] + list(replaced.values())
        fuzz['seconds'] = fuzz.get('seconds', 0) + data.get('seconds', 0)
        if data.get('seed') != fuzz.get('seed') or data.get('per_module') != fuzz.get('per_module'):
            fuzz['seed'] = '%s and %s' % (fuzz.get('seed'), data.get('seed'))
    text = render(fuzz, args.faults)
    with open(args.out, 'w', encoding='utf-8') as handle:
        handle.write(text)
    sets = sum(len(t.get('records') or []) for t in fuzz['targets'])
    print('wrote %s (%d modules, %d sets)' % (args.out, len(fuzz['targets']), sets))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
