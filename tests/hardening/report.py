"""Write docs/reliability.md from fuzz runs (tests/hardening/fuzz.py) and the fault tests' records.

    /tmp/vf/bin/python tests/hardening/report.py /var/tmp/vft-hardening/fuzz-full.json \\
        [more results or part files ...] --faults /var/tmp/vft-hardening [--out docs/reliability.md]

Each input is a fuzz.py result (``--out``) or one of the per-target part files a run keeps in its
``.parts`` directory (saved as it goes, so an interrupted run still counts). Results are merged by
target: the newest complete result of a target wins; an incomplete one (an interrupted worker) is
used only when the target has no complete result. So a full run can be done in pieces
(``--modules vm,fleet``, then the rest) and a target rerun alone after a fix.

``--faults`` is the directory the hardening integration tests wrote to when run with
``VIRTFLEET_HARDENING_OUT`` set (faults.json, concurrency.json, secrets.json); without it, the
report lists the fault tests without their last outcomes.
"""
from __future__ import annotations

import argparse
import collections
import gzip
import json
import os
import statistics
import time

import harness

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

FAULT_TESTS = [
    ('libvirtd killed during a fleet converge', 'test_hardening_faults.py::test_libvirtd_killed_during_fleet_converge'),
    ('QEMU process of a running VM killed',
     'test_hardening_faults.py::test_qemu_killed_state_running_starts_it_again_and_says_so'),
    ('pool filesystem full during a volume create',
     'test_hardening_faults.py::test_pool_filesystem_full_during_volume_create'),
    ('vCenter simulator stopped during a task', 'test_hardening_faults.py::test_vcsim_stopped_during_a_task'),
    ('vSphere vm task killed after the VM was created',
     'test_hardening_faults.py::test_vsphere_task_killed_after_the_vm_exists_rerun_takes_it_up'),
    ('libvirtd killed during a snapshot create', 'test_hardening_faults.py::test_libvirtd_killed_during_snapshot_create'),
    ('filesystem full during a snapshot create', 'test_hardening_faults.py::test_disk_full_during_snapshot_create'),
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
    ('A memory snapshot on a full filesystem failed with QEMU\'s "Error while writing VM state: Input/output error" '
     'only (QEMU reports ENOSPC so).',
     'the message names the VM\'s disks and the likely full filesystem, and says libvirt took no snapshot; '
     '`tests/unit/test_snapshot.py`, `test_hardening_faults.py::test_disk_full_during_snapshot_create`'),
]

FIXED += [
    ('storage_pool: a number for `source` or `source.auth` (`source: 1.5`) crashed ansible-core\'s argument '
     'validation (traceback, MODULE FAILURE).',
     'storage_pool uses `_module.checked_spec()` as vm and network do; '
     '`test_hardening_fuzz.py::test_found_by_fuzzing_clear_failures`'),
    ('storage_pool: a `logical` pool given a `path` (the 1000-set run: `path: .../sp/p1`) reported `changed: true` '
     '("updated: path") and rewrote its definition on every run: libvirt sets the target path of a logical pool to '
     '/dev/<source.name> whatever it is given.',
     'the path of a logical pool is /dev/<source.name>; another one is refused with a message naming `path` and '
     '`source.name` (the same path, or none, is accepted); `tests/unit/test_storage_spec.py`, '
     '`test_hardening_fuzz.py::test_a_logical_pool_path_other_than_dev_vg_is_refused_not_rewritten_forever`'),
    ('storage_pool, volume, cloud_init_seed: pool and volume names with a trailing newline passed '
     '`_storage_spec.POOL_NAME_RE`/`VOLUME_NAME_RE` (`$`); libvirt then refused them in its own words.',
     '`\\Z` instead of `$`; `tests/unit/test_storage_spec.py`, `test_found_by_fuzzing_clear_failures`'),
    ('container (1000-set run, #734): `ports: ["42629:80"]` with `networks` left out said "updated: ports" on every '
     'run. The container was on network `none` (an earlier set had put it there) and podman keeps no port mappings '
     'for such a container, so `podman inspect` never showed the ports asked for.',
     'the refusal of ports on a host or none network (above) covers networks left out too; '
     '`tests/unit/test_podman_container.py::test_ports_given_alone_for_a_container_on_network_none_are_refused`, '
     '`test_hardening_fuzz.py::test_ports_on_a_host_network_container_are_refused_not_recreated_forever[none]`'),
]

# Bugs of the harness itself (no product change), found by its own runs.
HARNESS_FIXED = [
    ('The playbook path wrote every string as `!unsafe "..."`; ansible-core 2.19 resolves such a scalar as if it '
     'were plain, so `"off"` reached the module as `false`, `"0x10"` as 16, and `"="` or `"<<"` made the playbook '
     'fail to load (no registered result). A key past 1024 characters broke the implicit-key form (fleet #700 of '
     'the 1000-set run: "yml:5:27", no registered result).',
     '`fuzz.ansible_string`: a plain double-quoted scalar, `!unsafe` only for strings with Jinja markers; '
     'explicit `? key :` for long keys; floats with a dot and a signed exponent; '
     '`test_hardening_fuzz.py::test_the_playbook_writer_gives_ansible_exactly_the_values_generated`, '
     '`::test_a_fuzzed_set_through_ansible_playbook_reaches_the_module_untemplated`'),
    ('vm #700 of the 1000-set run (through ansible-playbook): "changed=false (failed=True) but the hypervisor '
     'changed" (its storage pool). Not the module: the set fails in argument validation ("disks: two disks have the '
     'same target") before the module opens a libvirt connection (the same set with a URI whose socket does not '
     'exist fails with the same message); libvirtd had been restarted by another test run on the machine at that '
     'moment (libvirtd.log, 10:47:57), and a restarted daemon reloads and refreshes its pools.',
     'the harness notes libvirtd\'s PID and start time around each call; a state change across a restart is '
     'reported as inconclusive, not as a violation; '
     '`test_hardening_fuzz.py::test_a_set_that_fails_validation_never_reaches_libvirt`'),
    ('The seed-8 run of 13:30 flagged container sets #244-#252 (9, before it was stopped): each call, whichever '
     'container it was for, "changed" container vft-fz-ct-<run>-2. That container had `restart_policy: always` and '
     'a command that exits at once, so podman itself restarted it every second or two (status and start time '
     'changed between any two reads).',
     'the Podman snapshot leaves out the status and start time of a container with a restart policy (its ID, '
     'configuration, ports, mounts and networks are still compared); the container target ran again from set 0'),
    ('test_hardening_secrets wrote each task on one line; with the playbook writer\'s plain strings the line got '
     'shorter and ansible-core\'s "Origin" excerpt of a failing task showed the libvirt password written in it.',
     'one key a line, the name first, so the lines ansible-core shows carry no secret'),
    ('`fuzz.py` wrote its results only at the end and deleted the per-target parts: a killed run lost everything.',
     'workers save every 25 sets into `<out>.parts/` (kept), `--out` is rewritten whenever a target finishes, '
     'SIGTERM/Ctrl-C stop the workers cleanly; `report.py` merges several result and part files by target'),
]

FIXED += [
    ('container (seed-8 run of 13:40, #328): a recreation that failed half-way was reported as a success with '
     '`changed: false` and left the old container behind as `<name>-vfold-<hex>`. The container had a restart '
     'policy and a command that exits at once; `_recreate` created and renamed the new container, then removing the '
     'old one (which podman kept restarting) raised; `_reconcile._ensure` took the error for a race ("brought to the '
     'same spec by someone else at the same time"), found the new container converged and reported no change.',
     'the podman driver retries the removal of the old container and, if it still fails, raises an error marked '
     '`performed` naming the left-over container and the command to remove it; `_reconcile` never takes a '
     'performed update for a race and reports `changed: true` with the error; '
     '`tests/unit/test_podman_container.py::test_old_container_left_after_recreation_is_a_failure_with_changed_true`'),
    ('vm, network, storage_pool: the password in clear in the failure result (the storage_pool@vsphere target\'s '
     'second set: `source` given a string of `ü` and `<&>`). For an option with sub-options given a string that '
     'is neither JSON nor key=value, or a list item that is no dict, ansible-core\'s collection of `no_log` values '
     'raises while reading it, drops every `no_log` value of the task and fails with `invocation.module_args` '
     'showing `password` as given.',
     '`_module.checked_spec()` (and fleet\'s item check) treat every value that is not a dict (numbers, booleans, '
     'such strings, such list items) as they treated numbers: the option loses its sub-options in the copy of the '
     'spec, ansible-core refuses the value with its usual message and hides the password; '
     '`tests/unit/test_hardening_drivers.py::test_values_that_are_no_dicts_for_options_with_suboptions_are_found`, '
     '`test_hardening_fuzz.py::test_a_value_no_dict_for_a_dict_option_never_shows_the_password`'),
    ('network (vSphere): a port group for a cluster that failed on its second host (the network@vsphere target; '
     'govmomi\'s simulator refuses a second host\'s port group of the same name with DuplicateName) stayed on the '
     'first host while the task failed with `changed: false`. The same held for a datastore whose mount failed '
     'part-way when unmounting it again failed, and for removals that failed after the first host.',
     'the port group driver removes the port group again from the hosts this run added it to and says so; when '
     'an undo (port group or datastore) or a removal fails part-way, the error is marked `performed` and '
     '`_reconcile` reports `changed: true` (`created in part`, `deleted in part`); '
     '`test_vsphere_network.py::test_a_cluster_port_group_that_fails_on_one_host_is_undone_on_the_others`, '
     '`tests/unit/test_vsphere_datastore.py::test_failed_mount_not_undone_is_a_change`, '
     '`::test_unmount_failing_part_way_is_a_change`, `tests/unit/test_vsphere_network.py`'),
    ('migrate (vSphere; the migrate@vsphere target, 5 of its first 850 sets): a relocation that vSphere reported '
     'done but that did not reach every part of the destination (govmomi\'s simulator moves the host but leaves '
     'the disk files in place) failed with `changed: false`, although the VM had moved to another host or '
     'resource pool.',
     'the driver marks that error `performed` and `_reconcile.relocate` reports the move\'s actions with '
     '`changed: true`; `test_vsphere_migrate.py::test_storage_vmotion_is_judged_by_the_disks`'),
    ('vSphere modules: a NUL in `ca_path` (network@vsphere #775, migrate@vsphere #148, vm_info@vsphere #648) '
     'ended in a `ValueError: embedded null byte` traceback from Python\'s ssl module.',
     'the vSphere connection options (`hostname`, `username`, `password`, `ca_path`, `proxy_host`) are refused '
     'with a message naming the option when they hold a control character (the value not repeated: it may be '
     'the password); `test_hardening_fuzz.py::test_found_by_fuzzing_clear_failures`'),
    ('vm, network, container and every module on `_reconcile.ensure` (vm@vsphere #925 of the seed-8 run, replayed '
     'with the same seed to see its warning): an update that failed, after which the resource had the requested '
     'spec, was taken for another run\'s work ("brought to the same spec by someone else") and reported as '
     '`changed: false`. On the simulator the failed ReconfigVM_Task had itself applied the spec (govmomi applies '
     'a spec before validating it), so this run had changed the VM.',
     'which of the two made the change cannot be told, so `_reconcile` reports it as a change (`updated: ...`, '
     '`changed: true`) with a warning that names the update\'s error and both possibilities; '
     '`tests/unit/test_reconcile.py::test_update_raced_to_the_same_spec_is_converged`'),
]

FIXED += [
    ('vm (libvirt; the session-10 run at 2b16889, #642): a customization added to an existing VM together with '
     '`machine: q35` (the VM was a `pc` machine) failed in libvirt ("The PCI controller with index=\'0\' must be '
     'model=\'pcie-root\'") with `changed: false`, after the update had written the VM\'s cloud-init seed volume, '
     'which stayed in the pool. Changing a VM between the i440fx and q35 families keeps the old PCI controllers.',
     'a failed define (create or update) removes a seed it created, or the error is marked performed naming the '
     'seed it rewrote or could not remove; a change between the two machine families is refused naming `machine` '
     'before anything is written; `tests/unit/test_libvirt_vm_seed_undo.py`, `test_vm_seed_undo.py`'),
    ('fleet (session-10 run, #426): a `snapshot` name QEMU cannot revert to (`a"b`) was refused only for VMs that '
     'existed: the run that created the VM reported success, the same task again failed.',
     'the name is checked for the whole fleet before anything runs; '
     '`tests/unit/test_fleet_snapshot.py::test_a_snapshot_name_no_vm_can_take_is_refused_before_the_fleet_runs`'),
    ('vm (vSphere; session-10 run, #482): a template customized a second time before any power-on failed with the '
     'simulator\'s CustomizationPending after the run had made the template a VM to customize it; the task '
     'reported `changed: false` and left a VM where a template had been.',
     'a failure after the template was made a VM marks it a template again (both marks reported as actions) or is '
     'marked performed; CustomizationPending is explained (power the VM on once); '
     '`tests/unit/test_vsphere_vm.py`, `test_vsphere_clone.py`'),
    ('inventory@vsphere (session-10 runs, #282-288 of both): a NUL in `ca_path` ended in a Python `ValueError: '
     'embedded null byte` instead of an Ansible error.',
     'the plugin refuses a control character in a connection option naming it, with the check the modules use '
     '(`_clients/vsphere.control_character_setting`); `tests/unit/test_inventory_vsphere.py::test_connection_checks`'),
    ('container_volume (session-10 run at 2b16889, #470): labels `{fleet: "hLehSV\\x1b[31mCBcxrL", "org.x/y": '
     '"/日本${HOME}..\\r", ü: "é..;"}` reported `updated: labels` and recreated the volume on every run: '
     '`podman volume create --label` drops a trailing carriage return (network and container labels keep it; the '
     'escape character and the non-ASCII key are kept as given).',
     'a volume label ending in a carriage return is refused naming `labels.<key>`; '
     '`test_hardening_fuzz.py::test_a_volume_label_podman_would_alter_is_refused_not_recreated_forever`'),
    ('container (session-11 run 3786, #65, #66, #544-547, #829-831, #863-864): an existing container on a network '
     'given `pod` (into a pod its networks become the pod\'s, none of its own) crashed with a TypeError traceback '
     'in the driver\'s update plan, before anything was written.',
     'a move into a pod is planned as the recreation it is (`networks`, `pod` among the reasons); '
     '`tests/unit/test_podman_container.py::test_moving_a_container_into_a_pod_recreates_it`'),
]

HARNESS_FIXED += [
    ('vm@vsphere #525-527 of the session-10 run: valid sets with `wait_for_address` and no timeout waited the '
     'default 300 s for an address the simulator never gives and were killed at the 120 s call bound, which the '
     'run records as a timeout (the VM had been changed before the wait).',
     'a valid set with `wait_for_address` waits 30 s at most (`Target.bounded`)'),
    ('container_pod #780-871 of session-11 run 3786 (20 sets): the snapshot showed a pod with two networks as '
     'changed by calls that did not touch it: `podman pod inspect` lists a pod\'s networks in the order of a Go map, '
     'which differs between two reads.',
     'the snapshot sorts a pod\'s networks'),
    ('container_image #853 of session-11 run 3786: the idempotence re-run of a set that removed image 0 found it '
     'again (in use) and failed, because the harness restored the target\'s base objects (image 0 and its '
     'container) between the set and its re-run.',
     'the re-run of a set restores nothing first (`call(..., restore=False)`)'),
]

# Found and not fixed (each with how to reproduce it). Keep this honest: a bug goes here until it is fixed.
OPEN = []

# Notes on invariant violations of the run(s) the report is made from: (target, index, note). The newest complete
# runs have none (session 11: the container, container_pod and container_image sets that the runs before the fixes
# flagged - FIXED and HARNESS_FIXED above - pass in the re-runs).
VIOLATION_NOTES = []


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
        'inconclusive': sum(1 for r in records if r.get('inconclusive') and not r['problems']),
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
    runs = fuzz['runs']
    seeds = sorted(set(str(t.get('seed')) for t in fuzz['targets']))
    requested = sorted(set(str(t.get('requested')) for t in fuzz['targets']))
    every = sorted(set(str(t['playbook_every']) for t in fuzz['targets'] if t.get('playbook_every'))) or ['?']
    add('Runs: %s; seed %s; %s argument sets per module requested; every %sth set through `ansible-playbook`, '
        'the others through the module itself as Ansible runs it (a child process of the venv\'s python, '
        'arguments in a file); %.0f minutes of runs, several modules at a time, on a machine shared with other '
        'test runs. %s; %s.'
        % (', '.join(sorted(set(r['finished'] for r in runs))), ' and '.join(seeds), ' or '.join(requested),
           ' or '.join(every), sum(r.get('seconds') or 0 for r in runs) / 60.0,
           '; '.join(sorted(set(str(r.get('platform')) for r in runs if r.get('platform')))) or 'platform unknown',
           ', '.join('%s %s' % kv for kv in sorted(fuzz['versions'].items()))))
    if len(runs) > 1:
        add('')
        add('Merged from %d result files by target (the newest complete result of each): %s.'
            % (len(runs), '; '.join('%s: %s' % (os.path.basename(r['path']), ', '.join(r['used']) or 'nothing used')
                                    for r in runs)))
    add('')
    add('## Fuzzed arguments')
    add('')
    add('Argument sets are generated by hypothesis from each module\'s own argument spec (captured from its '
        '`main()`): six in ten *valid* (values from the spec\'s types and choices, names and paths of the run\'s '
        'own objects), three in ten with *one* problem (a wrong type, an out-of-range integer, an unknown '
        'choice, XML or shell metacharacters, unicode, an over-long string, an unknown option or a missing '
        'required one), one in ten *chaos* (many). Two in ten run in check mode, three in ten with `--diff`; '
        'every successful changing set runs a second time, which must report no change. For every '
        'set: the result is one JSON object with a `msg` when it failed, never a traceback (`exception` only '
        'for a missing library); a call that reports `changed: false` -- a failure included -- and every '
        'check-mode call leave the daemon\'s state as it was (the domains, networks, pools and volumes, Podman '
        'containers, volumes and networks, or vSphere VMs, port groups and datastores of the run, read before and after each call); the '
        'call ends within its bound (120 s, 180 s for fleet); no secret it was given appears in its output.')
    add('')
    add('| module | sets (of requested) | via playbook | valid / one bad / chaos | ok | failed cleanly | failed after a reported '
        'change | changed | check mode | idempotence re-runs | invariant violations | median s | max s |')
    add('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
    totals = collections.Counter()
    for target in fuzz['targets']:
        if target.get('error') and not target.get('records'):
            add('| %s | worker failed: %s |||||||||||| ' % (target['target'], _cell(target['error'][-300:])))
            continue
        s = summarize(target)
        for key in ('sets', 'playbook', 'ok', 'failed', 'after_change', 'changed', 'check', 'reruns', 'problems'):
            totals[key] += s[key]
        done = '%d' % s['sets'] if target.get('complete', True) else \
            '%d of %s (interrupted)' % (s['sets'], target.get('requested'))
        add('| %s | %s | %d | %d / %d / %d | %d | %d | %d | %d | %d | %d | %d | %.2f | %.1f |'
            % (target['target'], done, s['playbook'], s['valid'], s['one_bad'], s['chaos'], s['ok'],
               s['failed'], s['after_change'], s['changed'], s['check'], s['reruns'], s['problems'], s['median'],
               s['max']))
    add('| **all** | **%d** | %d | | %d | %d | %d | %d | %d | %d | **%d** | | |'
        % (totals['sets'], totals['playbook'], totals['ok'], totals['failed'], totals['after_change'],
           totals['changed'], totals['check'], totals['reruns'], totals['problems']))
    add('')
    missing = [k for k in harness.TARGETS if k not in [t['target'] for t in fuzz['targets']]]
    if missing:
        add('Not in these results (not run, for lack of time on the shared machine): %s. The quick slice '
            '(`test_hardening_fuzz.py`, 12 sets each) covers them on every test run.' % ', '.join(missing))
        add('')
    add('`<module>@vsphere` is the module against a vCenter simulator of the target\'s own (govmomi\'s vcsim); '
        '`container*` run against Podman, the rest against libvirtd. The simulator refuses a port group name that '
        'another host already uses (DuplicateName; vSphere allows it) and moves no disk files in a storage vMotion: '
        'the network@vsphere and migrate@vsphere failures in those words come from it, and each was checked like '
        'any other (nothing changed, or the change reported). The libvirt `migrate` target moves its VMs between the '
        'two simulated hypervisors of `tests/env/twohost-up.sh`.')
    add('')
    problems = [(t['target'], r) for t in fuzz['targets'] for r in t.get('records') or [] if r['problems']]
    add('### Invariant violations')
    add('')
    if not problems:
        add('None.')
    notes = dict(((key, index), note) for key, index, note in VIOLATION_NOTES)
    shown_notes = []
    for key, record in problems[:40]:
        note = notes.get((key, record['index']))
        if note in shown_notes:
            note = note.split(':', 1)[0] + ' (as above)'
        elif note:
            shown_notes.append(note)
        add('- %s #%d (%s, %s): %s; msg: %s; args: `%s`%s'
            % (key, record['index'], record['via'], record['mode'], '; '.join(record['problems']),
               _cell(record.get('msg') or '')[:300], _cell(json.dumps(record.get('args'), ensure_ascii=False))[:400],
               ('. **%s**' % note) if note else ''))
    if len(problems) > 40:
        add('- ... and %d more (in the result files)' % (len(problems) - 40))
    add('')
    inconclusive = [(t['target'], r) for t in fuzz['targets'] for r in t.get('records') or []
                    if r.get('inconclusive') and not r['problems']]
    if inconclusive:
        shown = ['%s #%d (%s)' % (key, r['index'], _cell(r.get('msg') or 'ok')[:80]) for key, r in inconclusive[:10]]
        add('Not counted: %d set(s) during which libvirtd was restarted by another process (another test run on '
            'the machine); the daemon reloads its pools and domains then, so the before/after comparison cannot '
            'tell what the call did: %s.' % (len(inconclusive), '; '.join(shown)))
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
        'counting) on the source with its disk intact; then the migration succeeds (issue 4, live migration) |')
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
        'as module options (they are `no_log`) or in the controller\'s environment. Likewise ansible-core 2.19 '
        'prints the source lines of a failing task up to its first line ("Origin"): a secret written literally '
        'there is shown by ansible-core itself; keep secrets in variables or Ansible Vault.'
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
    add('In the harness itself:')
    add('')
    for found, fix in HARNESS_FIXED:
        add('- %s Fix: %s.' % (found, fix))
    add('')
    add('## Open')
    add('')
    if not OPEN:
        add('No known bug: every bug the runs and tests above found is fixed. What the runs did not reach (see '
            'the table: interrupted targets, targets not run) may still hide some.')
    for found, repro, fix in OPEN:
        add('- %s Reproduce: %s. Suggested fix: %s.' % (found, repro, fix))
    add('')
    add('## How to rerun')
    add('')
    add('```sh')
    add('bash tests/env/libvirt-up.sh && venv=$(bash tests/env/venv.sh | tail -1)')
    add('# the quick slice (12 sets per module) and the fault, concurrency and secrets tests: part of ./tests/run.sh')
    add('VIRTFLEET_VENV_DIR=$venv $venv/bin/python -m pytest tests/integration/test_hardening_*.py')
    add('# the full run (about 90 minutes on 2 cores), in one piece or several (--modules vm,fleet, then the rest)')
    add('VIRTFLEET_VENV_DIR=$venv $venv/bin/python tests/hardening/fuzz.py --per-module 1000 --seed 8 --jobs 3 \\')
    add('    --out /var/tmp/vft-hardening/fuzz-full.json')
    add('VIRTFLEET_VENV_DIR=$venv VIRTFLEET_HARDENING_OUT=/var/tmp/vft-hardening $venv/bin/python -m pytest \\')
    add('    tests/integration/test_hardening_faults.py tests/integration/test_hardening_concurrency.py \\')
    add('    tests/integration/test_hardening_secrets.py')
    add('# every result file (and the part files of an interrupted run) of the run; the newest complete result per')
    add('# module wins')
    add('$venv/bin/python tests/hardening/report.py /var/tmp/vft-hardening/fuzz-full.json --faults /var/tmp/vft-hardening')
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


def _mtime(path):
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(os.path.getmtime(path)))


def _open(path):
    """A result file, gzip-compressed (``.gz``: as kept in tests/hardening/results) or not."""
    return gzip.open(path, 'rt', encoding='utf-8') if path.endswith('.gz') else open(path, encoding='utf-8')


def load_results(paths):
    """Merge fuzz.py results and part files by target: the newest complete result of each target wins (an
    incomplete one only when there is no complete one). Returns the dict ``render`` takes."""
    runs, candidates = [], collections.defaultdict(list)
    for order, path in enumerate(paths):
        with _open(path) as handle:
            data = json.load(handle)
        run = {'path': path, 'finished': data.get('finished') or _mtime(path), 'seconds': data.get('seconds'),
               'platform': data.get('platform'), 'versions': data.get('versions') or {}, 'used': []}
        if len(run['finished']) == 10:  # results of fuzz.py before 2026-11-26 have the date only
            run['finished'] = _mtime(path)
        targets = data['targets'] if 'targets' in data else [data]
        for target in targets:
            target = dict(target)
            target.setdefault('seed', data.get('seed'))
            target.setdefault('requested', data.get('per_module'))
            target.setdefault('playbook_every', data.get('playbook_every'))
            target.setdefault('complete', not target.get('error'))
            finished = target.get('finished') or run['finished']
            candidates[target['target']].append((bool(target['complete']), finished, order, target, run))
        runs.append(run)
    chosen = []
    for key in sorted(candidates, key=lambda k: (harness.TARGETS.index(k) if k in harness.TARGETS else 99, k)):
        _complete, _finished, _order, target, run = max(candidates[key], key=lambda c: c[:3])
        run['used'].append(key)
        chosen.append(target)
    used = [r for r in runs if r['used']]
    versions = {}
    for run in used:
        versions.update(run['versions'])
    for run in used:
        if run.get('seconds') is None:  # a part file: its target's own time
            run['seconds'] = sum(t.get('seconds') or 0 for t in chosen if t['target'] in run['used'])
    return {'runs': used, 'targets': chosen, 'versions': versions}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('fuzz_json', nargs='+',
                        help='fuzz.py results (--out) or part files (<out>.parts/*.json), plain or .gz; merged by '
                             'target, the newest complete result of each target wins')
    parser.add_argument('--faults', help='directory with faults.json, concurrency.json, secrets.json')
    parser.add_argument('--out', default=os.path.join(REPO, 'docs', 'reliability.md'))
    args = parser.parse_args(argv)
    fuzz = load_results(args.fuzz_json)
    text = render(fuzz, args.faults)
    with open(args.out, 'w', encoding='utf-8') as handle:
        handle.write(text)
    sets = sum(len(t.get('records') or []) for t in fuzz['targets'])
    incomplete = [t['target'] for t in fuzz['targets'] if not t.get('complete')]
    print('wrote %s (%d modules, %d sets%s)'
          % (args.out, len(fuzz['targets']), sets, '; incomplete: ' + ', '.join(incomplete) if incomplete else ''))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
