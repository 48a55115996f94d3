#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets from the recorded traces (testdata/traces, raw-IP
pcaps) and the shipped configs. Run from anywhere; rewrites
fuzz/corpus/{peer_messages,tun_packets,config,gro,transport_datagrams,control_requests}.
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

# gro: runs of in-order TCP segments (valid checksums, IPv4 IDs counting up) as a TSO sender
# puts them on the wire, some ending with PSH or a short segment, IPv4 and IPv6, two flows.
def csum(b):
    if len(b) % 2:
        b += b'\0'
    s = sum(struct.unpack('>%dH' % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return s

def tcp_segment(v6, sport, seq, ip_id, payload, flags=0x10):
    opts = b'\x01\x01\x08\x0a' + struct.pack('>II', 5, 99)
    tcp = struct.pack('>HHIIBBHHH', sport, 5201, seq, 77777, 0x80, flags, 500, 0, 0) + opts + payload
    if v6:
        src, dst = bytes(range(0x20, 0x30)), bytes(range(0x40, 0x50))
        ip = struct.pack('>IHBB', 0x60000000, len(tcp), 6, 64) + src + dst
        pseudo = src + dst + struct.pack('>II', len(tcp), 6)
    else:
        src, dst = bytes([10, 1, 0, 2]), bytes([10, 2, 0, 2])
        hdr = struct.pack('>BBHHHBBH', 0x45, 0, 20 + len(tcp), ip_id, 0x4000, 64, 6, 0) + src + dst
        ip = hdr[:10] + struct.pack('>H', 0xffff - csum(hdr)) + hdr[12:]
        pseudo = src + dst + struct.pack('>BBH', 0, 6, len(tcp))
    c = 0xffff - csum(pseudo + tcp)
    return ip + tcp[:16] + struct.pack('>H', c) + tcp[18:]

def framed(packets):
    return b''.join(struct.pack('>H', len(p)) + p for p in packets)

gro = []
for v6 in (False, True):
    for n, mss, end in ((3, 1348, 0x10), (12, 1348, 0x18), (5, 536, 0x10), (50, 1348, 0x10)):
        segs = [tcp_segment(v6, 40000, 1000 + i * mss, 7 + i, bytes((i + j) & 0xff for j in range(mss)),
                            end if i == n - 1 else 0x10) for i in range(n)]
        gro.append(framed(segs))
    mixed = []
    for i in range(8):
        mixed.append(tcp_segment(v6, 40000 + i % 2, 1000 + (i // 2) * 1000, 7 + i // 2, bytes(1000)))
    gro.append(framed(mixed))
write('gro', gro)

# transport_datagrams: records [selector][length (2)][bytes] (fuzz/transport_datagrams_fuzz.cpp:
# selector bits 0-1 the source, bit 2 port 9899, bits 3-5 the shape the harness gives the bytes).
def record(source, shape, body, port9899=True):
    return bytes([source | (4 if port9899 else 0) | shape << 3]) + struct.pack('>H', len(body)) + body

def chunk(kind, flags, body):
    c = struct.pack('>BBH', kind, flags, 4 + len(body)) + body
    return c + bytes(-len(c) % 4)

common = bytes(12)  # ports, tag and CRC32c: filled in by the harness (shapes 2 and 4)
sack = chunk(3, 0, struct.pack('>IIHH', 0, 1 << 20, 0, 0))
heartbeat = chunk(4, 0, struct.pack('>HH', 1, 12) + b'beat1234')
data = chunk(0, 3, struct.pack('>IHHI', 1, 1, 0, 0) + b'fuzzed message')
init = chunk(1, 0, struct.pack('>IIHHI', 0x1234, 1 << 20, 16, 16, 7))
probe = lambda kind, path, seq, cookie: bytes([kind, path]) + struct.pack('>IQQ', seq, 1000, cookie)
datagrams = [
    record(0, 2, common + sack) + record(1, 2, common + heartbeat),
    record(2, 2, common + sack) + record(3, 2, common + heartbeat),
    record(0, 3, probe(0, 0, 5, 0)) + record(1, 3, probe(1, 1, 6, 0)),
    record(2, 3, probe(0, 0, 7, 0)) + record(3, 3, probe(0, 1, 8, 99), False),
    record(0, 4, bytes([1]) + struct.pack('>I', 1) + common + data) +
    record(0, 4, bytes([1]) + struct.pack('>I', 3) + common + data) +
    record(0, 5, struct.pack('>IBBB', 1, 3, 1, 0) + struct.pack('>H', 40) + bytes(40)) +
    record(0, 6, struct.pack('>IIIII', 3, 2, 1, 0, 1)),
    record(0, 7, bytes([1, 0]) + struct.pack('>I', 9)) + record(2, 7, bytes([2, 1]) + struct.pack('>I', 9)),
    record(2, 1, bytes([0x26, 0xab, 0x26, 0xab]) + bytes(8) + init) + record(0, 0, b'\x00\x00\x46\x01garbage'),
]
write('transport_datagrams', datagrams)

# control_requests: [how the client sends][its bytes] (fuzz/control_requests_fuzz.cpp: bits 0-6
# the size of each read - 1, bit 7 the client closes; the lines after the request name the
# snapshot's parts).
write('control_requests', [
    bytes([0x80 | 15]) + b'show\n',
    bytes([0x80 | 3]) + 'show json\ntun0\npeer \u00e9\n192.0.2.2:9899\n192.0.2.1:9899 -> 192.0.2.2:9899\n'
    'established\nfailure "quoted" \\ \x01'.encode(),
    bytes([0x7f]) + b'ping\n',
    bytes([0x80]) + b'reload',
    bytes([0x80 | 127]) + b'x' * 4100 + b'\n',
    bytes([0x10]) + b'frobnicate \x1b[2J\xff\n',
])
