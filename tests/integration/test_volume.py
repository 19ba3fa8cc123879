"""virtfleet.virt.volume and virtfleet.virt.volume_info against the real libvirtd: sizes, overlays, clones, imports."""
from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import json
import os
import re
import socket
import ssl
import subprocess
import tempfile
import threading

from conftest import assert_clean_failure, free_port, sha256_file, volume_names, wait_ticks

MIB = 1024 ** 2


def _qemu_info(path, chain=False):
    argv = ['qemu-img', 'info', '--output', 'json', '-U'] + (['--backing-chain'] if chain else []) + [path]
    return json.loads(subprocess.run(argv, check=True, capture_output=True, text=True).stdout)


def test_new_volume_resize_and_refused_shrink(ansible, conn, storage):
    pool, path = storage.dir_pool('vol')
    args = {'pool': pool, 'name': 'data.raw', 'capacity': 16}
    file = os.path.join(path, 'data.raw')

    # check mode predicts the creation and creates nothing
    r = ansible.task('volume', args, check=True, diff=True)
    assert r['changed'] and r['actions'] == ['created'], r
    assert r['diff']['before'] == {}
    assert r['diff']['after']['spec'] == {'format': 'raw', 'capacity': 16 * MIB, 'backing_volume': None}
    assert volume_names(conn, pool) == [] and not os.path.exists(file)

    r = ansible.task('volume', args)
    assert r['changed'] and r['volume']['spec']['capacity'] == 16 * MIB and r['volume']['path'] == file, r
    assert os.path.getsize(file) == 16 * MIB

    # the same size in other spellings: nothing changes, nothing is written
    mtime = os.stat(file).st_mtime_ns
    for capacity in ('16MiB', '16384 KiB'):
        r = ansible.task('volume', dict(args, capacity=capacity))
        assert r['changed'] is False and r['actions'] == [], (capacity, r)
    assert os.stat(file).st_mtime_ns == mtime

    # grow: check mode and diff first, then for real
    r = ansible.task('volume', dict(args, capacity='32MiB'), check=True, diff=True)
    assert r['changed'] and r['actions'] == ['updated: capacity'], r
    assert (r['diff']['before']['spec']['capacity'], r['diff']['after']['spec']['capacity']) == (16 * MIB, 32 * MIB)
    assert os.path.getsize(file) == 16 * MIB
    r = ansible.task('volume', dict(args, capacity='32MiB'))
    assert r['changed'] and os.path.getsize(file) == 32 * MIB

    # shrinking is refused without allow_shrink, and nothing changes
    r = ansible.task('volume', dict(args, capacity=8))
    assert_clean_failure(r, 'capacity', 'allow_shrink', '32 MiB', '8 MiB')
    assert not r['changed'] and os.path.getsize(file) == 32 * MIB
    r = ansible.task('volume', dict(args, capacity=8, allow_shrink=True), diff=True)
    assert r['changed'] and os.path.getsize(file) == 8 * MIB, r
    assert r['diff']['after']['spec']['capacity'] == 8 * MIB

    # an unknown unit, a format change and a missing capacity: clear messages, nothing written
    r = ansible.task('volume', dict(args, name='bad.raw', capacity='10XB'))
    assert_clean_failure(r, 'capacity', "unknown unit 'XB'")
    r = ansible.task('volume', dict(args, format='qcow2'))
    assert_clean_failure(r, 'format', 'is raw, not qcow2', 'clone_from')
    r = ansible.task('volume', {'pool': pool, 'name': 'nosize.raw'})
    assert_clean_failure(r, 'capacity', 'is required')
    r = ansible.task('volume', {'pool': 'vft-no-such-pool', 'name': 'x.raw', 'capacity': 1})
    assert_clean_failure(r, 'pool', 'does not exist')
    assert volume_names(conn, pool) == ['data.raw'] and os.path.getsize(file) == 8 * MIB

    # qcow2: virtual size with a unit, unchanged on re-run
    q = {'pool': pool, 'name': 'data.qcow2', 'capacity': '1GiB', 'format': 'qcow2'}
    r = ansible.task('volume', q)
    assert r['changed'] and _qemu_info(os.path.join(path, 'data.qcow2'))['virtual-size'] == 1024 * MIB
    r_mod = ansible.task('volume', dict(q, capacity=1024))
    assert not r_mod['changed'], r_mod

    # volume_info returns the volumes in the module's shape
    r = ansible.task('volume_info', {'pool': pool})
    assert [v['name'] for v in r['volumes']] == ['data.qcow2', 'data.raw'] and not r['changed']
    assert r['volumes'][0] == r_mod['volume']
    r = ansible.task('volume_info', {'pool': pool, 'formats': ['raw']})
    assert [v['name'] for v in r['volumes']] == ['data.raw']

    # absent: check mode keeps it, wipe then delete, again is a no-op
    r = ansible.task('volume', {'pool': pool, 'name': 'data.raw', 'state': 'absent'}, check=True)
    assert r['changed'] and os.path.exists(file)
    r = ansible.task('volume', {'pool': pool, 'name': 'data.raw', 'state': 'absent', 'wipe': True}, diff=True)
    assert r['changed'] and r['diff']['after'] == {} and not os.path.exists(file), r
    r = ansible.task('volume', {'pool': pool, 'name': 'data.raw', 'state': 'absent'})
    assert not r['changed'] and not r.get('failed')


def test_import_overlay_chain_and_clone(ansible, conn, storage, guest_image):
    pool, path = storage.dir_pool('chain')
    checksum = 'sha256:' + sha256_file(guest_image)

    # a wrong checksum is refused before anything is created
    r = ansible.task('volume', {'pool': pool, 'name': 'base.raw', 'import_from': guest_image,
                                'checksum': 'sha256:' + '0' * 64})
    assert_clean_failure(r, 'checksum', 'not the expected', 'nothing was imported')
    assert volume_names(conn, pool) == []
    r = ansible.task('volume', {'pool': pool, 'name': 'base.raw', 'import_from': guest_image})
    assert_clean_failure(r, 'checksum', 'is required with import_from')
    r = ansible.task('volume', {'pool': pool, 'name': 'base.raw', 'import_from': guest_image, 'checksum': 'md5:00'})
    assert_clean_failure(r, 'checksum', 'sha256')
    assert volume_names(conn, pool) == []

    base = {'pool': pool, 'name': 'base.raw', 'import_from': guest_image, 'checksum': checksum}
    r = ansible.task('volume', base, check=True)
    assert r['changed'] and volume_names(conn, pool) == []
    r = ansible.task('volume', base)
    assert r['changed'] and r['volume']['spec'] == {'format': 'raw', 'capacity': MIB, 'backing_volume': None}, r
    assert sha256_file(os.path.join(path, 'base.raw')) == checksum.split(':')[1]
    r = ansible.task('volume', base)
    assert not r['changed'], r

    # a missing backing volume: clear message, nothing created
    r = ansible.task('volume', {'pool': pool, 'name': 'vm1.qcow2', 'backing_volume': 'nope.raw'})
    assert_clean_failure(r, 'backing_volume', "'nope.raw' not found", pool)
    assert volume_names(conn, pool) == ['base.raw']
    r = ansible.task('volume', {'pool': pool, 'name': 'vm1.qcow2', 'backing_volume': 'base.raw', 'format': 'raw'})
    assert_clean_failure(r, 'format', 'qcow2')

    # the overlay: qcow2 on the raw base, checked with qemu-img
    overlay = {'pool': pool, 'name': 'vm1.qcow2', 'backing_volume': 'base.raw', 'capacity': '64MiB'}
    r = ansible.task('volume', overlay, diff=True)
    assert r['changed'] and r['volume']['spec'] == {'format': 'qcow2', 'capacity': 64 * MIB,
                                                    'backing_volume': 'base.raw'}, r
    assert r['diff']['after']['spec']['backing_volume'] == 'base.raw'
    chain = _qemu_info(os.path.join(path, 'vm1.qcow2'), chain=True)
    assert [(c['filename'], c['format']) for c in chain] == [
        (os.path.join(path, 'vm1.qcow2'), 'qcow2'), (os.path.join(path, 'base.raw'), 'raw')]
    assert chain[0]['backing-filename-format'] == 'raw' and chain[0]['virtual-size'] == 64 * MIB
    r = ansible.task('volume', overlay)
    assert not r['changed'], r
    r = ansible.task('volume', {'pool': pool, 'name': 'vm1.qcow2', 'backing_volume': 'base.raw'})
    assert not r['changed'], r
    # its backing store is not changed behind the user's back
    r = ansible.task('volume', dict(overlay, backing_volume='other.raw'))
    assert_clean_failure(r, 'backing_volume', 'not other.raw')
    # an overlay smaller than its base is refused
    r = ansible.task('volume', {'pool': pool, 'name': 'small.qcow2', 'backing_volume': 'base.raw', 'capacity': '512KiB'})
    assert_clean_failure(r, 'capacity', 'smaller than the backing volume')

    # clones: same content, the format wanted, a larger size on request
    r = ansible.task('volume', {'pool': pool, 'name': 'copy.raw', 'clone_from': 'base.raw'})
    assert r['changed'] and sha256_file(os.path.join(path, 'copy.raw')) == checksum.split(':')[1], r
    r = ansible.task('volume', {'pool': pool, 'name': 'copy.qcow2', 'clone_from': 'base.raw', 'format': 'qcow2',
                                'capacity': 8})
    assert r['changed'] and r['volume']['spec'] == {'format': 'qcow2', 'capacity': 8 * MIB, 'backing_volume': None}
    info = _qemu_info(os.path.join(path, 'copy.qcow2'))
    assert info['format'] == 'qcow2' and info['virtual-size'] == 8 * MIB and 'backing-filename' not in info
    compared = subprocess.run(['qemu-img', 'compare', '-U', os.path.join(path, 'base.raw'),
                               os.path.join(path, 'copy.qcow2')], capture_output=True, text=True, check=False)
    assert compared.returncode == 0, compared.stdout + compared.stderr
    r = ansible.task('volume', {'pool': pool, 'name': 'copy.qcow2', 'clone_from': 'base.raw', 'capacity': 8})
    assert not r['changed'], r
    r = ansible.task('volume', {'pool': pool, 'name': 'copy2.raw', 'clone_from': 'nope.raw'})
    assert_clean_failure(r, 'clone_from', "'nope.raw' not found")
    assert volume_names(conn, pool) == ['base.raw', 'copy.qcow2', 'copy.raw', 'vm1.qcow2']


def test_import_qcow2_detects_format_and_grows(ansible, conn, storage, workdir):
    pool, path = storage.dir_pool('qimp')
    image = os.path.join(workdir, 'small.qcow2')
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', image, '4M'], check=True)
    checksum = 'sha256:' + sha256_file(image)
    r = ansible.task('volume', {'pool': pool, 'name': 'img', 'import_from': image, 'checksum': checksum,
                                'format': 'raw'})
    assert_clean_failure(r, 'format', 'is a qcow2 image, not raw')
    assert volume_names(conn, pool) == []
    args = {'pool': pool, 'name': 'img', 'import_from': image, 'checksum': checksum, 'capacity': 16}
    r = ansible.task('volume', args)
    assert r['changed'] and r['volume']['spec']['format'] == 'qcow2' and r['volume']['spec']['capacity'] == 16 * MIB, r
    assert _qemu_info(os.path.join(path, 'img'))['virtual-size'] == 16 * MIB
    r = ansible.task('volume', args)
    assert not r['changed'], r


class _ImageHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a directory; records each request as (method, path); /error/... answers 500."""
    requests = None  # a list per server, set by _image_server

    def do_GET(self):
        self.requests.append(('GET', self.path))
        if self.path.startswith('/error/'):
            self.send_error(500)
            return
        super().do_GET()

    def do_HEAD(self):
        self.requests.append(('HEAD', self.path))
        super().do_HEAD()

    def log_message(self, *args):  # pylint: disable=arguments-differ
        pass


@contextlib.contextmanager
def _image_server(directory, tls=None):
    """A real HTTP server for ``directory`` on 127.0.0.1 (HTTPS with the ``tls`` server context):
    ``(base URL, port, list of requests)``."""
    requests = []
    handler = functools.partial(type('Handler', (_ImageHandler,), {'requests': requests}), directory=directory)
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield '%s://127.0.0.1:%d' % ('https' if tls else 'http', server.server_address[1]), server.server_address[1], requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def _served_dir(workdir):
    """A directory to serve and an empty TMPDIR for the module (the play's environment with it)."""
    served = tempfile.mkdtemp(prefix='served-', dir=workdir)
    tmp = tempfile.mkdtemp(prefix='tmpdir-', dir=workdir)
    return served, tmp, {'environment': {'TMPDIR': tmp, 'no_proxy': '127.0.0.1'}}


def test_import_from_url_downloads_once_and_verifies(ansible, conn, storage, workdir):
    pool, path = storage.dir_pool('url')
    served, tmp, env = _served_dir(workdir)
    raw, image = os.path.join(workdir, 'url-src.raw'), os.path.join(served, 'cloud.qcow2')
    with open(raw, 'wb') as handle:
        handle.write(os.urandom(MIB))
    subprocess.run(['qemu-img', 'convert', '-q', '-f', 'raw', '-O', 'qcow2', raw, image], check=True)
    with open(image, 'rb') as handle:
        sha512 = hashlib.sha512(handle.read()).hexdigest()
    with _image_server(served) as (base, port, requests):
        # credentials in the URL (this server asks for none): never shown, not even in -vvv's module arguments
        url = 'http://vft-user:vft-url-secret@127.0.0.1:%d/cloud.qcow2' % port
        args = {'pool': pool, 'name': 'cloud.qcow2', 'import_from': url, 'checksum': 'sha512:' + sha512}

        # check mode: predicted, nothing asked of the server, nothing created
        r = ansible.task('volume', args, check=True, play_extra=env)
        assert r['changed'] and r['actions'] == ['created'] and 'download' not in r, r
        assert requests == [] and volume_names(conn, pool) == []

        r = ansible.task('volume', args, play_extra=env, extra_args=('-vvv',))
        assert r['changed'] and r['actions'] == ['created'], r
        assert '"module_args"' in ansible.last_stdout and 'vft-url-secret' not in ansible.last_stdout
        assert r['volume']['spec'] == {'format': 'qcow2', 'capacity': MIB, 'backing_volume': None}, r
        assert sha256_file(os.path.join(path, 'cloud.qcow2')) == sha256_file(image)
        assert _qemu_info(os.path.join(path, 'cloud.qcow2'))['format'] == 'qcow2'
        assert r['download']['url'] == 'http://********@127.0.0.1:%d/cloud.qcow2' % port, r
        assert r['download']['bytes'] == os.path.getsize(image), r
        assert r['download']['seconds'] >= 0 and r['download']['bytes_per_second'] > 0
        assert requests == [('GET', '/cloud.qcow2')] and os.listdir(tmp) == []

        # an existing volume is never downloaded again
        r = ansible.task('volume', args, play_extra=env)
        assert not r['changed'] and r['actions'] == [] and 'download' not in r, r
        assert len(requests) == 1 and os.listdir(tmp) == []


def test_import_from_url_failures_are_clear_and_leave_nothing(ansible, conn, storage, workdir):
    pool, path = storage.dir_pool('urlbad')
    served, tmp, env = _served_dir(workdir)
    image = os.path.join(served, 'disk.raw')
    with open(image, 'wb') as handle:
        handle.write(os.urandom(MIB))
    checksum = 'sha256:' + sha256_file(image)

    def task(url, **extra):
        return ansible.task('volume', dict({'pool': pool, 'name': 'disk.raw', 'import_from': url,
                                            'checksum': checksum}, **extra), play_extra=env)

    with _image_server(served) as (base, port, requests):
        # a wrong checksum: refused after the download, no volume, no temporary file
        r = task(base + '/disk.raw', checksum='sha256:' + '0' * 64)
        assert_clean_failure(r, 'checksum', base + '/disk.raw', 'not the expected ' + '0' * 64, 'nothing was imported')
        assert requests == [('GET', '/disk.raw')] and not r['changed']

        # 404, with credentials in the URL: the message names the URL without them, nothing shows them
        r = task('http://vft-user:vft-url-secret@127.0.0.1:%d/missing.raw' % port)
        assert_clean_failure(r, 'import_from', 'http://********@127.0.0.1:%d/missing.raw' % port,
                             'HTTP 404 File not found', 'nothing was imported')
        assert 'vft-url-secret' not in json.dumps(r) and 'vft-url-secret' not in ansible.last_stdout, r

        r = task(base + '/error/disk.raw')
        assert_clean_failure(r, 'import_from', base + '/error/disk.raw', 'HTTP 500 Internal Server Error')

    # nothing listens on the port
    url = 'http://127.0.0.1:%d/disk.raw' % free_port()
    r = task(url)
    assert_clean_failure(r, 'import_from', url, 'connection refused')

    # a server that takes the connection and never answers: bounded by download_timeout
    with socket.socket() as silent:
        silent.bind(('127.0.0.1', 0))
        silent.listen(4)
        url = 'http://127.0.0.1:%d/disk.raw' % silent.getsockname()[1]
        # the task's own timeout only guards against a hang: download_timeout ends it long before
        r = ansible.task('volume', {'pool': pool, 'name': 'disk.raw', 'import_from': url, 'checksum': checksum,
                                    'download_timeout': 2}, play_extra=dict(env, timeout=30))
    assert_clean_failure(r, 'import_from', url, 'no answer within 2 s (download_timeout)')

    assert volume_names(conn, pool) == [] and os.listdir(path) == [] and os.listdir(tmp) == []


def test_import_from_https_checks_the_certificate_unless_told_not_to(ansible, conn, storage, workdir):
    pool, path = storage.dir_pool('urltls')
    served, tmp, env = _served_dir(workdir)
    image = os.path.join(served, 'disk.raw')
    with open(image, 'wb') as handle:
        handle.write(os.urandom(MIB))
    cert, key = os.path.join(workdir, 'url-cert.pem'), os.path.join(workdir, 'url-key.pem')
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-days', '1',
                    '-keyout', key, '-out', cert], check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with _image_server(served, context) as (base, _port, requests):
        assert base.startswith('https://')
        args = {'pool': pool, 'name': 'disk.raw', 'import_from': base + '/disk.raw',
                'checksum': 'sha256:' + sha256_file(image)}
        # a self-signed certificate: refused by default, naming the way out
        r = ansible.task('volume', args, play_extra=env)
        assert_clean_failure(r, 'import_from', base + '/disk.raw', 'certificate cannot be verified',
                             'validate_certs: false')
        assert volume_names(conn, pool) == [] and requests == []
        r = ansible.task('volume', dict(args, validate_certs=False), play_extra=env)
        assert r['changed'] and requests == [('GET', '/disk.raw')], r
        assert sha256_file(os.path.join(path, 'disk.raw')) == sha256_file(image) and os.listdir(tmp) == []


def test_one_play_builds_pool_base_overlay_seed_and_a_running_vm(ansible, conn, storage, guests, guest_image,
                                                                 workdir):
    """The issue's scenario: one playbook from nothing to a running VM on an overlay, with a seed ISO."""
    pool = storage.name('play')
    pool_dir = storage.path(pool)
    vm, _disk, log = guests.new('ovl')
    checksum = 'sha256:' + sha256_file(guest_image)
    tasks = [
        {'virtfleet.virt.storage_pool': {'name': pool, 'type': 'dir', 'path': pool_dir, 'build': True,
                                         'state': 'active'}},
        {'virtfleet.virt.volume': {'pool': pool, 'name': 'base.raw', 'import_from': guest_image,
                                   'checksum': checksum}},
        {'virtfleet.virt.volume': {'pool': pool, 'name': vm + '.qcow2', 'backing_volume': 'base.raw',
                                   'capacity': '64MiB'}},
        {'virtfleet.virt.cloud_init_seed': {'pool': pool, 'name': vm + '-seed.iso',
                                            'meta_data': {'local-hostname': vm},
                                            'user_data': {'password': 'vft-secret-pw'}}},
        {'virtfleet.virt.vm': {'name': vm, 'state': 'running', 'memory': 32,
                               'disks': [{'pool': pool, 'volume': vm + '.qcow2'},
                                         {'pool': pool, 'volume': vm + '-seed.iso', 'device': 'cdrom'}],
                               'serial': [{'type': 'file', 'path': log}]}},
    ]
    play = os.path.join(workdir, 'play-%s.yml' % pool)
    with open(play, 'w') as handle:
        json.dump([{'hosts': 'localhost', 'gather_facts': False, 'tasks': tasks}], handle)

    ansible.playbook(play)
    assert re.search(r'localhost\s+: ok=5\s+changed=5\s+unreachable=0\s+failed=0', ansible.last_stdout), \
        ansible.last_stdout
    wait_ticks(log)
    dom = conn.lookupByName(vm)
    assert dom.isActive()
    xml = dom.XMLDesc(0)
    assert "volume='%s.qcow2'" % vm in xml and "volume='%s-seed.iso'" % vm in xml
    assert "device='cdrom'" in xml
    chain = _qemu_info(os.path.join(pool_dir, vm + '.qcow2'), chain=True)
    assert [c['filename'] for c in chain] == [
        os.path.join(pool_dir, vm + '.qcow2'), os.path.join(pool_dir, 'base.raw')]

    # the same playbook again: nothing changes anywhere, and the guest keeps running
    ansible.playbook(play)
    assert re.search(r'localhost\s+: ok=5\s+changed=0\s+unreachable=0\s+failed=0', ansible.last_stdout), \
        ansible.last_stdout
    assert 'vft-secret-pw' not in ansible.last_stdout
    assert dom.isActive()
