"""Every tunable of the network stack, in one place, each with why it has its value.

Times are in nanoseconds of the injected clock; sizes in bytes. Nothing else in the package
holds a magic number that a reader might want to change.
"""

from __future__ import annotations

MS = 1_000_000
SECOND = 1_000_000_000

# Link
ETH_MTU = 1500  # Ethernet payload limit (RFC 894)
ETH_MIN_FRAME = 60  # short frames are padded to this (without the FCS)
ETH_MAX_FRAME = 1518  # larger received frames are dropped as oversized

# ARP (RFC 826, RFC 1122 2.3.2)
ARP_CACHE_TTL = 60 * SECOND  # a resolved entry is trusted this long (Linux: ~30-60 s)
ARP_RETRY_INTERVAL = 1 * SECOND  # between requests for an unresolved address
ARP_MAX_TRIES = 3  # requests before the address is declared unreachable
ARP_QUEUE_PER_ADDR = 8  # packets held per unresolved address (RFC 1122 SHOULD >= 1)
ARP_MAX_ENTRIES = 256  # cache size (resolved + pending); oldest evicted first

# IPv4 (RFC 791, RFC 1122 3.3.2)
IP_DEFAULT_TTL = 64
IP_REASM_TIMEOUT = 30 * SECOND  # RFC 1122 suggests 60-120 s; Linux uses 30 s
IP_REASM_MAX_BYTES = 256 * 1024  # all partial datagrams together
IP_REASM_MAX_QUEUES = 64  # partial datagrams at once
ROUTE_CACHE_SIZE = 256  # destinations whose next hop ip_output remembers (cleared when full)
IP_MAX_DATAGRAM = 65535
ICMP_ERROR_RATE = 100  # ICMP errors per second at most (RFC 1812 4.3.2.8 token bucket)

# UDP (RFC 768)
UDP_RCVBUF = 256 * 1024  # payload bytes queued per socket before drops
UDP_RCVQUEUE = 1024  # datagrams queued per socket before drops
EPHEMERAL_FIRST, EPHEMERAL_LAST = 32768, 60999  # Linux's ip_local_port_range

# IGMPv2 (RFC 2236)
IGMP_UNSOLICITED_INTERVAL = 1 * SECOND  # 10 s in the RFC for v2 hosts; Linux repeats after 1 s
IGMP_MAX_GROUPS = 64

# TCP (RFC 9293, 6298, 7323, 5681, 1122)
TCP_MSS_DEFAULT = 536  # when the peer sends no MSS option (RFC 9293 3.7.1)
TCP_SNDBUF = 256 * 1024  # bytes an application may queue for sending
TCP_RCVBUF = 256 * 1024  # receive buffer, and so the largest window we offer
TCP_OOO_MAX_SEGMENTS = 256  # out-of-order segments held (a full window of 1 KiB ones)
TCP_RTO_INITIAL = 1 * SECOND  # RFC 6298 2.1
TCP_RTO_MIN = 1 * SECOND  # RFC 6298 2.4 (Linux lowers this to 200 ms)
TCP_RTO_MAX = 60 * SECOND  # RFC 6298 2.5
TCP_RTO_AFTER_SYN_LOSS = 3 * SECOND  # RFC 6298 5.7: no sample because the SYN was resent
TCP_MAX_RETRIES = 12  # data retransmissions before giving up (R2, ~>100 s)
TCP_SYN_RETRIES = 6  # SYN retransmissions (R2 for SYN, RFC 1122 4.2.3.5 >= 3 min)
TCP_SYNACK_RETRIES = 5
TCP_DELACK = 40 * MS  # delayed ACK (RFC 1122 4.2.3.2: < 0.5 s; Linux min 40 ms)
TCP_MSL = 30 * SECOND  # TIME_WAIT lasts 2 MSL = 60 s, as in Linux
TCP_FIN_TIMEOUT = 60 * SECOND  # an orphaned FIN_WAIT_2 is dropped after this (Linux)
TCP_KEEPIDLE = 7200 * SECOND  # RFC 1122 4.2.3.6 default idle before probes
TCP_KEEPINTVL = 75 * SECOND
TCP_KEEPCNT = 9
TCP_MAX_BACKLOG = 128  # listen(2) backlog is clamped to this (SOMAXCONN)
TCP_MAX_SYN_QUEUE = 256  # half-open connections per listener (SYN flood bound)
TCP_MAX_CONNECTIONS = 1024  # all TCBs together, TIME_WAIT included
TCP_INITIAL_CWND_SEGMENTS = 10  # RFC 6928
TCP_DUPACK_THRESHOLD = 3  # RFC 5681 fast retransmit

# DHCP client (RFC 2131)
DHCP_RETRY_FIRST = 4 * SECOND  # 4, 8, 16, 32, 64 s (RFC 2131 4.1), +-1 s jitter
DHCP_RETRY_MAX = 64 * SECOND
DHCP_MIN_LEASE = 60 * SECOND  # shorter leases are stretched to this
DHCP_MIN_RETRANSMIT = 60 * SECOND  # in RENEWING/REBINDING (RFC 2131 4.4.5)

# DNS stub resolver (RFC 1035, RFC 1123 6.1.3.3, RFC 2308)
DNS_TIMEOUT = 2 * SECOND  # per try
DNS_TRIES = 3  # per server
DNS_CACHE_ENTRIES = 256
DNS_NEGATIVE_TTL = 60 * SECOND  # cap on caching an NXDOMAIN
DNS_MAX_TTL = 86400 * SECOND
DNS_MAX_PENDING = 64
