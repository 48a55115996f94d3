#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets from the recorded traces (testdata/traces, raw-IP
pcaps) and the shipped configs. Run from anywhere; rewrites fuzz/corpus/{peer_messages,tun_packets,config}.
The seeds are committed; re-run this only when the traces or the wire format change."""
import hashlib, os, shutil, struct, glob

repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

def packets(pcap):
    d = open(pcap, 'rb').read()
    off, out = 24, []
    while off + 16 <= len(d):
        _, _, incl, _ = struct.unpack('<IIII', d[off:off + 16])
        out.append(d[off + 16:off + 16 + incl])
        off += 16 + incl
    return out

def vnet_for(p):
    # A plausible virtio-net header: TCPv4/v6 GSO with a partial checksum, else none.
    v4 = p[0] >> 4 == 4
    ihl = (p[0] & 15) * 4 if v4 else 40
    proto = p[9] if v4 else p[6]
    if proto == 6 and len(p) > 1500:
        return struct.pack('<BBHHHH', 1, 1 if v4 else 4, ihl + 32, 1448, ihl, 16)
    return struct.pack('<BBHHHH', 0, 0, 0, 0, 0, 0)

def write(target, items):
    d = os.path.join(repo, 'fuzz', 'corpus', target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for b in items:
        open(os.path.join(d, hashlib.sha1(b).hexdigest()), 'wb').write(b)
    print(target, len(items), 'seeds')

def msg(stream, body):
    body = body[:0xffff]
    return bytes([stream]) + struct.pack('>H', len(body)) + body

def bundle_item(m):
    n = len(m)
    return (bytes([n]) if n < 0x80 else bytes([0x80 | n >> 8, n & 0xff])) + m

traces = sorted(glob.glob(os.path.join(repo, 'testdata', 'traces', '*.pcap')))
peer, tun = [], []
for t in traces:
    ps = packets(t)
    for start in range(0, min(len(ps), 48), 12):
        chunk = ps[start:start + 12]
        for setup in (0, 1, 2, 3):
            seq = b''
            for i, p in enumerate(chunk):
                if len(p) > 1500 or i % 5 == 4:
                    seq += msg(1, b'\x03' + vnet_for(p) + p)
                else:
                    seq += msg(1 + i % 3, b'\x02' + p)
            small = [b'\x02' + p for p in chunk if len(p) < 200][:4]
            if len(small) >= 2:
                seq += msg(2, b'\x07' + b''.join(bundle_item(m) for m in small))
            seq += msg(0, b'\x06\x00\x01')
            peer.append(bytes([setup]) + seq)
        plain = b''.join(bytes([0]) + struct.pack('>H', len(p)) + p for p in chunk)
        withv = b''.join(bytes([1]) + struct.pack('>H', len(p) + 10) + vnet_for(p) + p for p in chunk)
        tun += [plain, withv]
write('peer_messages', peer)
write('tun_packets', tun)

configs = [open(f, 'rb').read() for f in sorted(glob.glob(os.path.join(repo, 'packaging', 'examples', '*.toml')))]
configs.append(b'''[tun]
name = "tun0"
mtu = 1400
addresses = ["10.255.0.1/30", "fd00:255::1/64"]
default = "bypass"
fwmark = 77
bypass_table = 1077
[transport]
kind = "udp"
local = ["192.0.2.1", "2001:db8::1"]
port = 9899
streams = 64
probe_interval_ms = 50
failover_ms = 150
[control]
socket = "/run/sctptund.sock"
[flows]
tcp_idle_s = 600
max = 1000
max_per_peer = 100
[[peer]]
name = "b"
remote = ["192.0.2.2", "[2001:db8::2]"]
encryption = "none"
pool = 3
compression = false
[[route]]
prefix = "10.2.0.0/16"
[[policy]]
prefix = "10.2.0.0/16"
protocol = "tcp"
ports = "80,443,8000-8100"
action = "tunnel"
peer = "b"
[[policy]]
prefix = "10.3.0.0/16"
action = "drop"
''')
write('config', configs)
