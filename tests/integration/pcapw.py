"""A tiny pcap writer for tests that need exactly known packets (Ethernet + IPv4 + TCP): the test
writes them, so it knows what capture must count. Checksums are computed, so tshark and capture
see well-formed packets."""
import ipaddress
import struct


def _csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return (~s) & 0xFFFF


class Writer:
    def __init__(self, path):
        self.f = open(path, "wb")
        self.f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        self.count = 0

    def tcp(self, t, src, dst, sport, dport, flags="S", seq=None, ipid=1, win=14600, ttl=64):
        """One TCP packet at time t (float seconds since the epoch); flags from 'SAFRP'."""
        s, d = ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed
        if seq is None:
            seq = 0x12345678
        fl = sum({"F": 1, "S": 2, "R": 4, "P": 8, "A": 16}[c] for c in flags)
        tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, 0, 5 << 4, fl, win, 0, 0)
        pseudo = s + d + struct.pack("!BBH", 0, 6, len(tcp))
        tcp = tcp[:16] + struct.pack("!H", _csum(pseudo + tcp)) + tcp[18:]
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), ipid & 0xFFFF, 0, ttl, 6, 0, s, d)
        ip = ip[:10] + struct.pack("!H", _csum(ip)) + ip[12:]
        frame = b"\x02\0\0\0\0\x01" + b"\x02\0\0\0\0\x02" + b"\x08\x00" + ip + tcp
        sec = int(t)
        usec = int(round((t - sec) * 1e6))
        self.f.write(struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame)
        self.count += 1

    def close(self):
        self.f.close()


def mirai_seq(dst):
    """Mirai's scanner puts the destination address in the sequence number."""
    return int(ipaddress.IPv4Address(dst))
