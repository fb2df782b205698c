"""Stdlib-only programs run inside pod namespaces (``ip netns exec``): a server and a prober.

server.py LOG TCP_PORTS UDP_PORTS SCTP_PORTS: answers TCP connections with ``ok`` then echoes, echoes UDP
datagrams, and logs every UDP payload and every raw SCTP packet (the kernel may lack an SCTP stack,
so SCTP is observed with a raw socket) to LOG, one JSON line each. Prints ``ready`` once bound.

probe.py JSON: runs the probes concurrently and prints one JSON list of results. A probe is
``{"kind": "tcp"|"udp"|"sctp"|"raw_udp"|"raw_eth"|"raw_eth6"|"raw_arp", "dst", "port", ...}``; tcp/udp report
whether a reply came back, the others only send (their delivery is read from the server's log). tcp/udp with
``"ext6": true`` send over IPv6 with a hop-by-hop and a destination options header (sticky socket options);
raw_eth6 sends one UDP datagram in an Ethernet frame behind hop-by-hop, routing (type 0, no segments
left), fragment (atomic) and destination options headers.

hold.py DST PORT: opens one TCP connection, prints ``connected``, then for each line on stdin sends
it and prints ``echo`` when it comes back (``error ...`` otherwise): a long-lived connection.
"""

SERVER = r"""
import json, socket, sys, threading
log_path, tcp_ports, udp_ports, sctp_ports = sys.argv[1], *(
    [int(p) for p in a.split(",") if p] for a in sys.argv[2:5])
lock = threading.Lock()
def log(rec):
    with lock, open(log_path, "a") as f:
        f.write(json.dumps(rec) + "\n")
def serve(c):
    try:
        c.sendall(b"ok")
        while True:
            data = c.recv(1 << 20)
            if not data:
                break
            c.sendall(data)
    except OSError:
        pass
    finally:
        c.close()
def dual(kind):
    s = socket.socket(socket.AF_INET6, kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    return s
def tcp(port):
    s = dual(socket.SOCK_STREAM)
    s.bind(("::", port)); s.listen(64)
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()
def udp(port):
    s = dual(socket.SOCK_DGRAM); s.bind(("::", port))
    while True:
        data, peer = s.recvfrom(65535)
        log({"proto": "udp", "port": port, "src": peer[0], "data": data.decode(errors="replace")})
        s.sendto(b"ok:" + data, peer)
def sctp():
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 132)
    while True:
        data, peer = s.recvfrom(4096)
        ihl = (data[0] & 15) * 4
        dport = int.from_bytes(data[ihl + 2:ihl + 4], "big")
        if dport in sctp_ports:
            log({"proto": "sctp", "port": dport, "src": peer[0], "data": data[ihl + 12:].decode(errors="replace")})
threads = [threading.Thread(target=tcp, args=(p,), daemon=True) for p in tcp_ports]
threads += [threading.Thread(target=udp, args=(p,), daemon=True) for p in udp_ports]
if sctp_ports:
    threads.append(threading.Thread(target=sctp, daemon=True))
for t in threads:
    t.start()
print("ready", flush=True)
threading.Event().wait()
"""

PROBE = r"""
import json, socket, struct, sys, threading
probes = json.loads(sys.argv[1])
results = [None] * len(probes)
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
def ip_header(src, dst, proto, length):
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + length, 0, 0x4000, 64, proto, 0,
                       socket.inet_aton(src), socket.inet_aton(dst))
PADN = bytes([0, 0, 1, 4, 0, 0, 0, 0])  # an 8-byte options header holding one PadN option
def ext6(s):
    s.setsockopt(socket.IPPROTO_IPV6, 54, PADN)  # IPV6_HOPOPTS
    s.setsockopt(socket.IPPROTO_IPV6, 59, PADN)  # IPV6_DSTOPTS
def run(i, p):
    t = p.get("timeout", 1.0)
    try:
        if p["kind"] == "tcp" and p.get("ext6"):
            s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM); ext6(s); s.settimeout(t)
            s.connect((p["dst"], p["port"])); ok = s.recv(16) == b"ok"; s.close(); results[i] = ok
        elif p["kind"] == "tcp":
            s = socket.create_connection((p["dst"], p["port"]), timeout=t)
            s.settimeout(t); ok = s.recv(16) == b"ok"; s.close(); results[i] = ok
        elif p["kind"] == "bulk":  # send p["bytes"] and read the echo back: a bulk transfer both ways
            s = socket.create_connection((p["dst"], p["port"]), timeout=t)
            s.settimeout(10); assert s.recv(2) == b"ok"
            total, got = p["bytes"], [0]
            def reader():
                while got[0] < total:
                    chunk = s.recv(1 << 20)
                    if not chunk: break
                    got[0] += len(chunk)
            r = threading.Thread(target=reader); r.start()
            block = b"x" * 65536
            for _ in range(total // len(block)): s.sendall(block)
            r.join(); s.close(); results[i] = got[0] == total
        elif p["kind"] == "udp":
            family = socket.AF_INET6 if ":" in p["dst"] else socket.AF_INET
            s = socket.socket(family, socket.SOCK_DGRAM); s.settimeout(t)
            if p.get("ext6"): ext6(s)
            s.sendto(p["data"].encode(), (p["dst"], p["port"]))
            data, _ = s.recvfrom(65535); results[i] = data == b"ok:" + p["data"].encode(); s.close()
        elif p["kind"] == "raw_udp":
            payload = p["data"].encode()
            udp = struct.pack("!HHHH", p.get("sport", 40000 + i), p["port"], 8 + len(payload), 0) + payload
            s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
            s.sendto(ip_header(p["src"], p["dst"], 17, len(udp)) + udp, (p["dst"], 0)); s.close()
            results[i] = True
        elif p["kind"] == "raw_eth":
            payload = p["data"].encode()
            udp = struct.pack("!HHHH", p.get("sport", 40000 + i), p["port"], 8 + len(payload), 0) + payload
            ip = bytearray(ip_header(p["src"], p["dst"], 17, len(udp)))
            ip[10:12] = struct.pack("!H", csum(bytes(ip)))
            frame = bytes.fromhex(p["dst_mac"].replace(":", "")) + bytes.fromhex(p["src_mac"].replace(":", ""))
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
            s.bind(("eth0", 0))
            s.send(frame + b"\x08\x00" + bytes(ip) + udp); s.close()
            results[i] = True
        elif p["kind"] == "raw_eth6":
            payload = p["data"].encode()
            src, dst = socket.inet_pton(socket.AF_INET6, p["src"]), socket.inet_pton(socket.AF_INET6, p["dst"])
            udp = struct.pack("!HHHH", p.get("sport", 40000 + i), p["port"], 8 + len(payload), 0) + payload
            pseudo = src + dst + struct.pack("!IxxxB", len(udp), 17)
            udp = udp[:6] + struct.pack("!H", csum(pseudo + udp) or 0xffff) + udp[8:]
            exts = bytes([43, 0, 1, 4, 0, 0, 0, 0])  # hop-by-hop (PadN), next: routing
            exts += bytes([44, 0, 0, 0, 0, 0, 0, 0])  # routing type 0, segments left 0, next: fragment
            exts += bytes([60, 0, 0, 0]) + struct.pack("!I", 0x5e1f)  # fragment: offset 0, no more; next: dst opts
            exts += bytes([17, 0, 1, 4, 0, 0, 0, 0])  # destination options (PadN), next: UDP
            ip6 = struct.pack("!IHBB", 6 << 28, len(exts) + len(udp), 0, 64) + src + dst
            frame = bytes.fromhex(p["dst_mac"].replace(":", "")) + bytes.fromhex(p["src_mac"].replace(":", ""))
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
            s.bind(("eth0", 0))
            s.send(frame + b"\x86\xdd" + ip6 + exts + udp); s.close()
            results[i] = True
        elif p["kind"] == "raw_arp":
            mac = lambda m: bytes.fromhex(m.replace(":", ""))
            arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac(p["sha"]) + socket.inet_aton(p["spa"])
            arp += b"\0" * 6 + socket.inet_aton(p["dst"])
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
            s.bind(("eth0", 0))
            s.send(b"\xff" * 6 + mac(p["src_mac"]) + b"\x08\x06" + arp); s.close()
            results[i] = True
        elif p["kind"] == "sctp":
            chunk = p["data"].encode()
            pkt = struct.pack("!HHII", p.get("sport", 41000 + i), p["port"], 0, 0) + chunk
            s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 132)
            for _ in range(2):
                s.sendto(pkt, (p["dst"], 0))
            s.close(); results[i] = True
    except OSError:
        results[i] = False
threads = [threading.Thread(target=run, args=(i, p)) for i, p in enumerate(probes)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps(results))
"""

HOLD = r"""
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
print("connected" if s.recv(16) == b"ok" else "bad", flush=True)
for line in sys.stdin:
    word = line.strip().encode()
    try:
        s.sendall(word)
        print("echo" if s.recv(64) == word else "bad", flush=True)
    except OSError as e:
        print("error", e, flush=True)
"""
