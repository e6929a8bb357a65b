#!/usr/bin/env python3
# The simulated hosts' network cards, for the rack bench. The simulator runs every host behind one veth,
# but rackboot ties a requester's address to a host only when the server's ARP table agrees with the
# lease (src/boot/identify.ts), as it would on a real rack where each machine answers ARP with its own
# MAC. This answers ARP on the client veth for each leased address with the MAC of the host holding it
# (the simulator reports "IP MAC" over UDP on loopback once it has its ACK, and waits for the echo).
# The kernel's own ARP for those addresses is switched off by run.sh (arp_ignore=8, arp_announce=2),
# and an nft ingress rule there hands frames sent to a host MAC to the veth.
# Usage (in the client namespace, root): nics.py DEVICE UDP_PORT
import select
import socket
import struct
import sys

ETH_P_ARP = 0x0806
PACKET_OUTGOING = 4


def mac_bytes(text):
    return bytes(int(h, 16) for h in text.split(":"))


def main():
    dev, port = sys.argv[1], int(sys.argv[2])
    raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
    raw.bind((dev, ETH_P_ARP))
    ctl = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ctl.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)  # 1,000 hosts may report at once
    ctl.bind(("127.0.0.1", port))
    owner = {}  # IPv4 address (4 bytes) -> MAC (6 bytes); bounded by the pool run.sh hands out
    while True:
        ready, _, _ = select.select([raw, ctl], [], [])
        if ctl in ready:
            msg, peer = ctl.recvfrom(128)
            try:
                ip, mac = msg.decode("ascii").split()
                owner[socket.inet_aton(ip)] = mac_bytes(mac)
                ctl.sendto(msg, peer)
            except (ValueError, OSError) as e:
                print(f"nics: {msg!r}: {e}", file=sys.stderr)
        if raw in ready:
            frame, addr = raw.recvfrom(2048)
            if addr[2] == PACKET_OUTGOING or len(frame) < 42:
                continue
            htype, ptype, hlen, plen, op = struct.unpack("!HHBBH", frame[14:22])
            if (htype, ptype, hlen, plen, op) != (1, 0x0800, 6, 4, 1):
                continue
            sha, spa, tpa = frame[22:28], frame[28:32], frame[38:42]
            mac = owner.get(tpa)
            if mac is None:
                continue
            reply = sha + mac + struct.pack("!HHHBBH", ETH_P_ARP, 1, 0x0800, 6, 4, 2) + mac + tpa + sha + spa
            try:
                raw.send(reply)
            except OSError as e:  # a full queue under load: the asker repeats its request
                print(f"nics: ARP reply for {socket.inet_ntoa(tpa)} not sent: {e}", file=sys.stderr)


if __name__ == "__main__":
    main()
