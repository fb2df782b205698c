// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/* podnet's tc programs, attached to the host side of every pod's veth.
 *
 *   pn_from_pod  tc ingress of the host veth: what the pod sends. Anti-spoofing, then the pod's
 *                EGRESS policy (peer = destination).
 *   pn_to_pod    tc egress of the host veth: what is routed to the pod. The pod's INGRESS policy
 *                (peer = source), whatever the source: a remote node, the host, the world.
 *
 * A packet from one local pod to another is judged at the source's hook for both sides (egress,
 * then the destination's ingress) and handed to the destination with bpf_redirect_peer, which
 * skips the node's routing and the destination's host veth.
 *
 * A connection is thus judged twice (source egress, destination ingress) exactly as the compiler's
 * decide() does, and a connection from another node still meets the destination's ingress policy.
 *
 * Per new connection: peer identity from pn_ipcache (LPM), decision from pn_policy (LPM over
 * endpoint, peer, direction, protocol, port prefix; exact peer first, else the wildcard peer 0),
 * then an entry in pn_ct keyed from the endpoint's point of view, so the connection's later packets
 * and its replies pass without a policy lookup; between two local pods, once the destination's ingress
 * admitted a TCP connection, the source's entry says so and the destination's lookup is skipped
 * (enforce's PN_PASS_ADMITTED). Events go to pn_events: one per allowed new
 * connection, and drops aggregated per flow and reason (one record per second at most).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "podnet.h"

#define NS 1000000000ULL
#define CT_TCP_LIFETIME (3600 * NS)
#define CT_CLOSING_LIFETIME (10 * NS)
#define CT_OTHER_LIFETIME (60 * NS)
#define DROP_REPORT_INTERVAL NS
#define PULL_LEN 128

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

#ifndef IPPROTO_SCTP
#define IPPROTO_SCTP 132
#endif
#define ETH_P_ARP_ 0x0806

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct pn_endpoint);
} pn_endpoints SEC(".maps");

/* The node's uplinks and overlay devices carrying pn_from_uplink (value: PN_EP_OWNS_CLSACT when podnet
 * created the device's clsact qdisc). Only userspace reads it: it is the record of what to detach. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} pn_uplinks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct pn_local_key);
	__type(value, struct pn_local_value);
} pn_local SEC(".maps");

/* Every pod address of the cluster (value: its identity): a destination found here but not in
 * pn_local is a pod of another node, reached by bpf_redirect_neigh without the node's stack. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct pn_local_key);
	__type(value, __u32);
} pn_pods SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct pn_ipcache_key);
	__type(value, __u32);
} pn_ipcache SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 262144);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct pn_policy_key);
	__type(value, struct pn_policy_value);
} pn_policy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct pn_ct_key);
	__type(value, struct pn_ct_value);
} pn_ct SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct pn_drop_key);
	__type(value, struct pn_drop_value);
} pn_drops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PN_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} pn_counters SEC(".maps");

/* Per CPU, room to build a new connection's policy key and conntrack value in: the programs' stack
 * (512 bytes for the whole call chain) has none left for them. */
struct pn_scratch_value {
	struct pn_ct_value ct;
	struct pn_policy_key pk;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pn_scratch_value);
} pn_scratch SEC(".maps");

/* Rule id -> the rule's JSON text, written by userspace so any reader can name the rule of an event. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, char[1024]);
} pn_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20); /* ~210,000 records of 80 bytes (72 and the ring's header) */
} pn_events SEC(".maps");

/* IPv4 fragments: the first one carries the ports, the others find them here by datagram. */
struct pn_frag_key {
	__u32 saddr;
	__u32 daddr;
	__u16 id;
	__u8 proto;
	__u8 pad;
};

struct pn_frag_ports {
	__u16 sport;
	__u16 dport;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct pn_frag_key);
	__type(value, struct pn_frag_ports);
} pn_frags SEC(".maps");

/* IPv6 fragments (fragment extension header): the same, by addresses and 32-bit identification. */
struct pn_frag6_key {
	__u8 saddr[16];
	__u8 daddr[16];
	__u32 id;
	__u8 proto;
	__u8 pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct pn_frag6_key);
	__type(value, struct pn_frag_ports);
} pn_frags6 SEC(".maps");

#define IPV6_EXT_MAX 6 /* extension headers walked before the transport header; more: not found */
#define NEXTHDR_HOP 0
#define NEXTHDR_ROUTING 43
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_AUTH 51
#define NEXTHDR_DEST 60

struct pkt {
	__u8 family;
	__u8 proto;
	__u8 tcp_flags;
	__u8 nd;          /* IPv6 neighbour discovery, or link-scoped (link-local/unspecified to link-local/multicast) */
	__u8 arp_sha[6];  /* ARP (Ethernet/IPv4): sender hardware and protocol address */
	__u8 arp_spa[4];
	__u8 arp_ok;      /* the ARP header was read */
	__u8 icmp_err;    /* an ICMP(v6) error: the offset of the packet it quotes (its IP header), else 0 */
	__u16 sport;      /* network order */
	__u16 dport;
	__u8 saddr[16];
	__u8 daddr[16];
};

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&pn_counters, &idx);

	if (v)
		*v += 1;
}

static __always_inline void emit(__u8 type, __u8 verdict, __u8 reason, __u8 dir, __u32 ifindex,
				 const struct pn_endpoint *ep, __u32 peer, __u32 rule, __u32 n,
				 const struct pkt *p, __u8 is_reply)
{
	struct pn_event *e = bpf_ringbuf_reserve(&pn_events, sizeof(*e), 0);

	if (!e) {
		count(PN_CNT_EVENTS_LOST);
		return;
	}
	e->time_ns = bpf_ktime_get_ns();
	e->endpoint = ifindex;
	e->identity = ep ? ep->identity : 0;
	e->peer_identity = peer;
	e->rule_id = rule;
	e->count = n;
	e->type = type;
	e->verdict = verdict;
	e->reason = reason;
	e->direction = dir;
	e->family = p->family;
	e->protocol = p->proto;
	e->tcp_flags = p->tcp_flags;
	e->is_reply = is_reply;
	e->sport = bpf_ntohs(p->sport);
	e->dport = bpf_ntohs(p->dport);
	__builtin_memcpy(e->saddr, p->saddr, 16);
	__builtin_memcpy(e->daddr, p->daddr, 16);
	bpf_ringbuf_submit(e, 0);
}

static __always_inline void flow_key(struct pn_ct_key *k, __u32 ifindex, const struct pkt *p, __u8 dir)
{
	k->endpoint = ifindex;
	k->family = p->family;
	k->protocol = p->proto;
	if (dir == PN_DIR_EGRESS) {
		k->lport = p->sport;
		k->rport = p->dport;
		__builtin_memcpy(k->laddr, p->saddr, 16);
		__builtin_memcpy(k->raddr, p->daddr, 16);
	} else {
		k->lport = p->dport;
		k->rport = p->sport;
		__builtin_memcpy(k->laddr, p->daddr, 16);
		__builtin_memcpy(k->raddr, p->saddr, 16);
	}
}

/* Drop, reporting at most one event per flow and reason per DROP_REPORT_INTERVAL; the event's
 * count says how many packets it stands for. */
static __always_inline int drop_reply(__u8 reason, __u8 dir, __u32 ifindex, const struct pn_endpoint *ep,
				      __u32 peer, __u32 rule, const struct pkt *p, __u8 is_reply)
{
	struct pn_drop_key dk = {};
	struct pn_drop_value nv = {};
	struct pn_drop_value *dv;
	__u64 now = bpf_ktime_get_ns();

	if (reason == PN_DROP_POLICY || reason == PN_DROP_NO_POLICY)
		count(PN_CNT_DROP_POLICY);
	else if (reason == PN_DROP_INVALID_SIP || reason == PN_DROP_INVALID_SMAC)
		count(PN_CNT_DROP_SPOOF);
	else
		count(PN_CNT_DROP_OTHER);
	flow_key(&dk.flow, ifindex, p, dir);
	dk.reason = reason;
	dv = bpf_map_lookup_elem(&pn_drops, &dk);
	if (dv && now - dv->last_report_ns < DROP_REPORT_INTERVAL) {
		__sync_fetch_and_add(&dv->suppressed, 1);
		count(PN_CNT_EVENTS_AGGREGATED);
		return TC_ACT_SHOT;
	}
	nv.last_report_ns = now;
	if (!dv && bpf_map_update_elem(&pn_drops, &dk, &nv, BPF_NOEXIST) != 0) {
		/* another CPU took this flow's first report a moment ago (packets of one flow can be in two
		 * CPUs' backlogs at once): count this one with it */
		dv = bpf_map_lookup_elem(&pn_drops, &dk);
		if (dv)
			__sync_fetch_and_add(&dv->suppressed, 1);
		count(PN_CNT_EVENTS_AGGREGATED);
		return TC_ACT_SHOT;
	}
	if (dv)
		bpf_map_update_elem(&pn_drops, &dk, &nv, BPF_ANY);
	emit(PN_EVENT_DROP, PN_VERDICT_DENY, reason, dir, ifindex, ep, peer, rule, dv ? dv->suppressed + 1 : 1, p,
	     is_reply);
	return TC_ACT_SHOT;
}

static __always_inline int drop(__u8 reason, __u8 dir, __u32 ifindex, const struct pn_endpoint *ep,
				__u32 peer, __u32 rule, const struct pkt *p)
{
	return drop_reply(reason, dir, ifindex, ep, peer, rule, p, 0);
}

/* IPv6 behind extension headers (hop-by-hop, routing, destination options, AH, fragment): walk at
 * most IPV6_EXT_MAX of them with bpf_skb_load_bytes (offsets vary), then read the transport ports
 * there. p->proto becomes the transport protocol. A fragment header at offset 0 with more fragments
 * records the datagram's ports in pn_frags6; a later fragment takes them from there (none seen: no
 * ports). Returns the ethertype, 0 when truncated. */
static __noinline int parse_ipv6_ext(struct __sk_buff *skb, struct pkt *p, __u16 ethertype)
{
	struct pn_frag6_key fk = {};
	__u32 off = sizeof(struct ethhdr) + sizeof(struct ipv6hdr);
	__u8 nh = p->proto, buf[14];
	int first_frag = 0, i;

#pragma unroll
	for (i = 0; i < IPV6_EXT_MAX; i++) {
		if (nh == NEXTHDR_HOP || nh == NEXTHDR_ROUTING || nh == NEXTHDR_DEST) {
			if (bpf_skb_load_bytes(skb, off, buf, 2) < 0)
				return 0;
			nh = buf[0];
			off += ((__u32)buf[1] + 1) * 8;
		} else if (nh == NEXTHDR_AUTH) {
			if (bpf_skb_load_bytes(skb, off, buf, 2) < 0)
				return 0;
			nh = buf[0];
			off += ((__u32)buf[1] + 2) * 4;
		} else if (nh == NEXTHDR_FRAGMENT) {
			__u16 frag;

			if (bpf_skb_load_bytes(skb, off, buf, 8) < 0)
				return 0;
			nh = buf[0];
			off += 8;
			frag = ((__u16)buf[2] << 8) | buf[3];
			__builtin_memcpy(fk.saddr, p->saddr, 16);
			__builtin_memcpy(fk.daddr, p->daddr, 16);
			__builtin_memcpy(&fk.id, buf + 4, 4);
			fk.proto = nh;
			if (frag & 0xfff8) {
				/* a later fragment: the ports of its datagram's first one, if it was seen */
				struct pn_frag_ports *fp = bpf_map_lookup_elem(&pn_frags6, &fk);

				p->proto = nh;
				if (fp) {
					p->sport = fp->sport;
					p->dport = fp->dport;
				}
				return ethertype;
			}
			first_frag = frag & 1; /* offset 0 and no more fragments: an atomic fragment, a whole packet */
		} else {
			break;
		}
	}
	p->proto = nh;
	if (nh == IPPROTO_TCP) {
		if (bpf_skb_load_bytes(skb, off, buf, 14) < 0)
			return 0;
		__builtin_memcpy(&p->sport, buf, 2);
		__builtin_memcpy(&p->dport, buf + 2, 2);
		p->tcp_flags = buf[13];
	} else if (nh == IPPROTO_UDP || nh == IPPROTO_SCTP) {
		if (bpf_skb_load_bytes(skb, off, buf, 4) < 0)
			return 0;
		__builtin_memcpy(&p->sport, buf, 2);
		__builtin_memcpy(&p->dport, buf + 2, 2);
	} else if (nh == IPPROTO_ICMPV6) {
		if (bpf_skb_load_bytes(skb, off, buf, 1) < 0)
			return 0;
		p->nd |= buf[0] >= 133 && buf[0] <= 137;
	}
	if (first_frag) {
		struct pn_frag_ports fp = {p->sport, p->dport};

		bpf_map_update_elem(&pn_frags6, &fk, &fp, BPF_ANY);
	}
	return ethertype;
}

/* Make sure the headers parse() reads are in the linear part, pulling in at most PULL_LEN bytes when
 * they are not. A TCP segment from a local socket has exactly its headers there and its payload in
 * pages: pulling anyway would copy the head of every segment (and unshare the clone TCP keeps). */
static __always_inline void pull_headers(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	__u32 linear = data_end - data;
	__u32 need = ETH_HLEN + 40 + 20; /* IPv6 (extension headers are read with bpf_skb_load_bytes) + TCP */

	if ((void *)(eth + 1) <= data_end && eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		need = ETH_HLEN + 20 + 20;
		if ((void *)(ip + 1) <= data_end)
			need = ETH_HLEN + ip->ihl * 4 + 20;
	}
	if (linear < need && skb->len > linear)
		bpf_skb_pull_data(skb, skb->len < PULL_LEN ? skb->len : PULL_LEN);
}

/* Parse L3/L4 into *p. Returns the ethertype (host order), 0 when the frame is truncated. */
static __always_inline int parse(struct __sk_buff *skb, struct pkt *p, __u8 *smac)
{
	struct pn_frag_key fk = {};
	void *data, *data_end;
	struct ethhdr *eth;
	int first_frag = 0;
	__u16 proto;

	pull_headers(skb);
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	eth = data;
	if ((void *)(eth + 1) > data_end)
		return 0;
	__builtin_memcpy(smac, eth->h_source, ETH_ALEN);
	proto = bpf_ntohs(eth->h_proto);
	if (proto == ETH_P_IP) {
		struct iphdr *ip = (void *)(eth + 1);
		void *l4;

		if ((void *)(ip + 1) > data_end || ip->ihl < 5)
			return 0;
		p->family = 4;
		p->proto = ip->protocol;
		__builtin_memcpy(p->saddr, &ip->saddr, 4);
		__builtin_memcpy(p->daddr, &ip->daddr, 4);
		if (ip->frag_off & bpf_htons(0x3fff)) {
			fk.saddr = ip->saddr;
			fk.daddr = ip->daddr;
			fk.id = ip->id;
			fk.proto = ip->protocol;
			if (ip->frag_off & bpf_htons(0x1fff)) {
				/* a later fragment: the ports of its datagram's first one, if it was seen */
				struct pn_frag_ports *fp = bpf_map_lookup_elem(&pn_frags, &fk);

				if (fp) {
					p->sport = fp->sport;
					p->dport = fp->dport;
				}
				return proto;
			}
			first_frag = 1;
		}
		l4 = (void *)ip + ip->ihl * 4;
		if (p->proto == IPPROTO_TCP) {
			struct tcphdr *th = l4;

			if ((void *)(th + 1) > data_end)
				return 0;
			p->sport = th->source;
			p->dport = th->dest;
			p->tcp_flags = ((__u8 *)th)[13];
		} else if (p->proto == IPPROTO_UDP || p->proto == IPPROTO_SCTP) {
			__u16 *ports = l4;

			if ((void *)(ports + 2) > data_end)
				return 0;
			p->sport = ports[0];
			p->dport = ports[1];
		} else if (p->proto == IPPROTO_ICMP && !first_frag) {
			__u8 *icmp = l4;

			/* destination unreachable, time exceeded, parameter problem: they quote a packet */
			if ((void *)(icmp + 8) <= data_end && (icmp[0] == 3 || icmp[0] == 11 || icmp[0] == 12))
				p->icmp_err = (__u8)((void *)(icmp + 8) - data);
		}
		if (first_frag) {
			struct pn_frag_ports fp = {p->sport, p->dport};

			bpf_map_update_elem(&pn_frags, &fk, &fp, BPF_ANY);
		}
		return proto;
	}
	if (proto == ETH_P_IPV6) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		void *l4 = (void *)(ip6 + 1);

		if ((void *)(ip6 + 1) > data_end)
			return 0;
		p->family = 6;
		p->proto = ip6->nexthdr;
		__builtin_memcpy(p->saddr, &ip6->saddr, 16);
		__builtin_memcpy(p->daddr, &ip6->daddr, 16);
		/* link-scoped traffic (MLD, ND, router solicitation from fe80:: or ::) never leaves the link */
		if (((p->saddr[0] == 0xfe && (p->saddr[1] & 0xc0) == 0x80) ||
		     (ip6->saddr.in6_u.u6_addr32[0] | ip6->saddr.in6_u.u6_addr32[1] | ip6->saddr.in6_u.u6_addr32[2] |
		      ip6->saddr.in6_u.u6_addr32[3]) == 0) &&
		    (p->daddr[0] == 0xff || (p->daddr[0] == 0xfe && (p->daddr[1] & 0xc0) == 0x80)))
			p->nd = 1;
		if (p->proto == NEXTHDR_HOP || p->proto == NEXTHDR_ROUTING || p->proto == NEXTHDR_FRAGMENT ||
		    p->proto == NEXTHDR_AUTH || p->proto == NEXTHDR_DEST)
			return parse_ipv6_ext(skb, p, proto);
		if (p->proto == IPPROTO_TCP) {
			struct tcphdr *th = l4;

			if ((void *)(th + 1) > data_end)
				return 0;
			p->sport = th->source;
			p->dport = th->dest;
			p->tcp_flags = ((__u8 *)th)[13];
		} else if (p->proto == IPPROTO_UDP || p->proto == IPPROTO_SCTP) {
			__u16 *ports = l4;

			if ((void *)(ports + 2) > data_end)
				return 0;
			p->sport = ports[0];
			p->dport = ports[1];
		} else if (p->proto == IPPROTO_ICMPV6) {
			__u8 *icmp = l4;

			if ((void *)(icmp + 1) > data_end)
				return 0;
			p->nd |= icmp[0] >= 133 && icmp[0] <= 137;
			/* destination unreachable, packet too big, time exceeded, parameter problem */
			if ((void *)(icmp + 8) <= data_end && icmp[0] >= 1 && icmp[0] <= 4)
				p->icmp_err = (__u8)((void *)(icmp + 8) - data);
		}
		return proto;
	}
	if (proto == ETH_P_ARP_) {
		__u8 *arp = (void *)(eth + 1);

		if ((void *)(arp + 28) > data_end)
			return 0;
		if (arp[0] == 0 && arp[1] == 1 && arp[2] == 0x08 && arp[3] == 0 && arp[4] == 6 && arp[5] == 4) {
			__builtin_memcpy(p->arp_sha, arp + 8, 6);
			__builtin_memcpy(p->arp_spa, arp + 14, 4);
			p->arp_ok = 1;
		}
		return proto;
	}
	return proto;
}

static __always_inline __u64 lifetime(const struct pkt *p, __u8 closing)
{
	if (closing)
		return CT_CLOSING_LIFETIME;
	return p->proto == IPPROTO_TCP ? CT_TCP_LIFETIME : CT_OTHER_LIFETIME;
}

static __always_inline __u32 peer_identity(const struct pkt *p, __u8 dir)
{
	struct pn_ipcache_key k = {};
	__u32 *id;

	k.family = p->family;
	if (p->family == 4) {
		k.prefixlen = 32 + 32;
		__builtin_memcpy(k.addr, dir == PN_DIR_EGRESS ? p->daddr : p->saddr, 4);
	} else {
		k.prefixlen = 32 + 128;
		__builtin_memcpy(k.addr, dir == PN_DIR_EGRESS ? p->daddr : p->saddr, 16);
	}
	id = bpf_map_lookup_elem(&pn_ipcache, &k);
	if (id)
		return *id;
	return p->family == 4 ? PN_WORLD_V4 : PN_WORLD_V6;
}

/* An ICMP error quoting a packet of a connection this endpoint has: related to it, so it passes as
 * the connection's own packets do (what conntrack's "related" state gives the nftables backend).
 * The quoted packet went the other way: at ingress it is one the endpoint sent, at egress one it
 * received. Only a quote with no IPv4 options / IPv6 extension headers is read. */
static __always_inline int related(struct __sk_buff *skb, const struct pkt *p, __u8 dir, struct pn_ct_key *k)
{
	struct pn_ct_value *ct;
	__u32 off = p->icmp_err;
	__u32 alen = p->family == 4 ? 4 : 16;
	__u32 src = off + (p->family == 4 ? 12 : 8);
	__u32 dst = src + alen;
	__u8 *local = k->laddr, *remote = k->raddr;
	__u16 *lport = &k->lport, *rport = &k->rport;
	__u8 first = 0;

	/* the key's endpoint and family stay; the rest is the quoted connection's */
	__builtin_memset(k->laddr, 0, 16);
	__builtin_memset(k->raddr, 0, 16);
	k->lport = 0;
	k->rport = 0;
	if (p->family == 4) {
		if (bpf_skb_load_bytes(skb, off, &first, 1) < 0 || first != 0x45 ||
		    bpf_skb_load_bytes(skb, off + 9, &k->protocol, 1) < 0)
			return 0;
		off += 20;
	} else {
		if (bpf_skb_load_bytes(skb, off + 6, &k->protocol, 1) < 0)
			return 0;
		off += 40;
	}
	if (dir != PN_DIR_INGRESS) { /* at egress the quote is a packet the endpoint received */
		local = k->raddr;
		remote = k->laddr;
		lport = &k->rport;
		rport = &k->lport;
	}
	if (p->family == 4) {
		if (bpf_skb_load_bytes(skb, src, local, 4) < 0 || bpf_skb_load_bytes(skb, dst, remote, 4) < 0)
			return 0;
	} else {
		if (bpf_skb_load_bytes(skb, src, local, 16) < 0 || bpf_skb_load_bytes(skb, dst, remote, 16) < 0)
			return 0;
	}
	if (k->protocol == IPPROTO_TCP || k->protocol == IPPROTO_UDP || k->protocol == IPPROTO_SCTP) {
		if (bpf_skb_load_bytes(skb, off, lport, 2) < 0 || bpf_skb_load_bytes(skb, off + 2, rport, 2) < 0)
			return 0;
	}
	ct = bpf_map_lookup_elem(&pn_ct, k);
	return ct && ct->expires_ns > bpf_ktime_get_coarse_ns();
}

/* enforce() returns this (not a TC_ACT_* value) when the packet belongs to an established TCP
 * connection whose local destination's ingress admitted it already (pn_ct_value.peer). */
#define PN_PASS_ADMITTED 0x100

/* Conntrack, then policy for a new connection. Inlined: a call costs a return, and returns are dear
 * where the kernel mitigates speculative returns (SRSO); the new connection's key and entry live in
 * pn_scratch, which keeps both inlined copies within the 512-byte stack. ``peer_tag``: for an egress
 * packet on its way to a pod of this node, that pod's tag (pn_peer_tag), else 0. */
static __always_inline int enforce(struct __sk_buff *skb, __u32 ifindex, const struct pn_endpoint *ep,
				   const struct pkt *p, __u8 dir, __u16 peer_tag)
{
	struct pn_ct_key ck = {};
	struct pn_scratch_value *sc;
	struct pn_ct_value *nv;
	struct pn_policy_key *pk;
	__u32 zero = 0;
	struct pn_policy_value *pv;
	struct pn_ct_value *ct;
	/* conntrack time: the clock as of the last tick (a few ms behind), which costs a load where reading
	 * the clock source costs tens of ns a call in a VM; lifetimes are seconds */
	__u64 now = bpf_ktime_get_coarse_ns();
	__u32 peer;
	__u8 is_reply;

	flow_key(&ck, ifindex, p, dir);
	ct = bpf_map_lookup_elem(&pn_ct, &ck);
	if (ct && ct->expires_ns > now &&
	    !(ct->closing && (p->tcp_flags & (TCP_SYN | TCP_ACK)) == TCP_SYN)) {
		/* statistics without atomics, and the lifetime refreshed at most once a second: the
		 * fast path writes as little as possible to a line both directions' CPUs share */
		ct->packets += 1;
		ct->bytes += skb->len;
		if ((p->tcp_flags & (TCP_FIN | TCP_RST)) && !ct->closing) {
			ct->closing = 1;
			ct->expires_ns = now + CT_CLOSING_LIFETIME;
		} else if (!ct->closing && ct->expires_ns < now + lifetime(p, 0) - NS) {
			ct->expires_ns = now + lifetime(p, 0);
		}
		count(PN_CNT_CT_HIT);
		count(PN_CNT_FORWARDED);
		if (peer_tag && ct->peer == peer_tag && !ct->closing && p->proto == IPPROTO_TCP &&
		    !(p->tcp_flags & (TCP_SYN | TCP_FIN | TCP_RST))) {
			count(PN_CNT_PEER_ADMITTED);
			return PN_PASS_ADMITTED;
		}
		return TC_ACT_OK;
	}

	/* Judged by policy: a new connection, or a packet whose entry expired. The entry (kept until
	 * the LRU evicts it) says whether this packet goes the reply way of the connection it opened;
	 * a TCP SYN without ACK always opens a new connection, a SYN-ACK always answers one. */
	is_reply = (p->tcp_flags & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK);
	if (ct && ct->origin != dir && (p->tcp_flags & (TCP_SYN | TCP_ACK)) != TCP_SYN)
		is_reply = 1;
	if (p->icmp_err) {
		if (related(skb, p, dir, &ck)) {
			count(PN_CNT_RELATED);
			count(PN_CNT_FORWARDED);
			return TC_ACT_OK;
		}
		flow_key(&ck, ifindex, p, dir);
	}
	sc = bpf_map_lookup_elem(&pn_scratch, &zero);
	if (!sc)
		return TC_ACT_SHOT; /* cannot happen: a per-CPU array always has its entry */
	pk = &sc->pk;
	__builtin_memset(sc, 0, sizeof(*sc));
	peer = peer_identity(p, dir);
	pk->prefixlen = 96;
	pk->endpoint = ifindex;
	pk->peer = peer;
	pk->direction = dir;
	if (p->proto == IPPROTO_TCP || p->proto == IPPROTO_UDP || p->proto == IPPROTO_SCTP) {
		pk->protocol = p->proto;
		pk->port = p->dport;
	}
	pv = bpf_map_lookup_elem(&pn_policy, pk);
	if (!pv) {
		pk->peer = 0;
		pv = bpf_map_lookup_elem(&pn_policy, pk);
	}
	if (!pv)
		return drop_reply(PN_DROP_NO_POLICY, dir, ifindex, ep, peer, 0, p, is_reply);
	if (pv->verdict != PN_VERDICT_ALLOW && pv->verdict != PN_VERDICT_AUDIT)
		return drop_reply(PN_DROP_POLICY, dir, ifindex, ep, peer, pv->rule_id, p, is_reply);

	nv = &sc->ct;
	nv->created_ns = now;
	nv->packets = 1;
	nv->bytes = skb->len;
	nv->rule_id = pv->rule_id;
	nv->origin = is_reply && ct ? ct->origin : dir; /* a reply keeps the connection's origin */
	nv->closing = (p->tcp_flags & (TCP_FIN | TCP_RST)) ? 1 : 0;
	nv->expires_ns = now + lifetime(p, nv->closing);
	bpf_map_update_elem(&pn_ct, &ck, nv, BPF_ANY);
	count(PN_CNT_NEW_CONN);
	count(PN_CNT_FORWARDED);
	emit(PN_EVENT_POLICY_VERDICT, pv->verdict, 0, dir, ifindex, ep, peer, pv->rule_id, 1, p, is_reply);
	return TC_ACT_OK;
}

static __always_inline int mac_eq(const __u8 *a, const __u8 *b)
{
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3] && a[4] == b[4] && a[5] == b[5];
}

static __always_inline int addr_eq(const __u8 *a, const __u8 *b, int n)
{
	int i;

#pragma unroll
	for (i = 0; i < 16; i++)
		if (i < n && a[i] != b[i])
			return 0;
	return 1;
}

/* The hop the node's forwarding would count, written in place: TTL (with the header checksum, updated
 * incrementally) or hop limit, minus one; with ``dst``, also the MACs the node would put on the frame
 * toward that local pod (source: its gateway, destination: the pod). Direct writes: the headers are in
 * the linear part (pull_headers), and a TCP segment's clone may have its headers written without
 * copying.
 * -1 when the TTL would reach 0 (the node must answer with time exceeded) or the headers are not there. */
static __always_inline int forward_hop(struct __sk_buff *skb, const struct pkt *p, const struct pn_local_value *dst)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return -1;
	if (p->family == 4) {
		struct iphdr *ip = (void *)(eth + 1);
		__u32 sum;

		if ((void *)(ip + 1) > data_end || ip->ttl <= 1)
			return -1;
		ip->ttl--;
		/* the TTL is the high byte of its 16-bit word: one less there is 0x0100 more in the one's
		 * complement sum (RFC 1624), with the carry folded back in */
		sum = (__u32)ip->check + (__u32)bpf_htons(0x0100);
		ip->check = (__u16)(sum + (sum >> 16));
	} else {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end || ip6->hop_limit <= 1)
			return -1;
		ip6->hop_limit--;
	}
	if (dst) {
		__builtin_memcpy(eth->h_dest, dst->mac, ETH_ALEN);
		__builtin_memcpy(eth->h_source, dst->host_mac, ETH_ALEN);
	}
	return 0;
}

/* The pod of this node with the packet's destination address (its host veth and MACs); NULL: none. */
static __always_inline struct pn_local_value *local_pod(const struct pkt *p)
{
	struct pn_local_key lk = {};

	lk.family = p->family;
	__builtin_memcpy(lk.addr, p->daddr, 16);
	return bpf_map_lookup_elem(&pn_local, &lk);
}

/* The local destination ``tag`` admitted this TCP connection: say so in the source's egress entry, so
 * the connection's later packets skip the destination's conntrack lookup (enforce's PN_PASS_ADMITTED). */
static __noinline void admit_peer(__u32 from, const struct pkt *p, __u16 tag)
{
	struct pn_ct_key ck = {};
	struct pn_ct_value *ct;

	flow_key(&ck, from, p, PN_DIR_EGRESS);
	ct = bpf_map_lookup_elem(&pn_ct, &ck);
	if (ct && !ct->closing && ct->peer != tag)
		ct->peer = tag;
}

/* A packet the source's egress allowed, for the pod ``dst`` of this node: judge the destination's
 * ingress here (bpf_redirect_peer skips the destination's host veth, so pn_to_pod will not see it)
 * unless the source's entry says that ingress admitted the connection already (``admitted``), then
 * rewrite L2 as the node would, decrement the TTL, and hand it straight to the pod's eth0. ``from``
 * is the source pod's host veth, 0 for a packet from another node. Returns -1 when the node must
 * handle the packet itself. */
static __always_inline int redirect_local(struct __sk_buff *skb, const struct pkt *p, __u32 from,
					  const struct pn_local_value *dst, __u32 counter, int admitted)
{
	__u32 to = dst->ifindex;
	int verdict;

	if (!admitted) {
		struct pn_endpoint *ep = bpf_map_lookup_elem(&pn_endpoints, &to);

		if (!ep)
			return -1;
		verdict = enforce(skb, to, ep, p, PN_DIR_INGRESS, 0);
		if (verdict != TC_ACT_OK)
			return verdict;
		if (from && p->proto == IPPROTO_TCP && !(p->tcp_flags & (TCP_FIN | TCP_RST)))
			admit_peer(from, p, pn_peer_tag(to));
	}
	if (forward_hop(skb, p, dst) < 0)
		return -1; /* let the node answer with time exceeded */
	count(counter);
	return bpf_redirect_peer(to, 0);
}

/* A packet the source's egress allowed, for somewhere off this node: ask the node's routing table
 * (bpf_fib_lookup) where it goes and send it there with bpf_redirect_neigh, which fills in L2 from
 * the neighbour table, as the node's forwarding would but without its trip through the stack.
 * Returns -1 when the node must handle the packet itself (not a pod's address, no route, a route
 * back where it came from, TTL running out). */
static __always_inline int redirect_remote(struct __sk_buff *skb, const struct pkt *p, __u32 from)
{
	struct bpf_fib_lookup fib = {};
	struct pn_local_key pk = {};
	long rc;

	/* Only pod to pod: anything else (a Service address before kube-proxy's DNAT, the outside
	 * before the node's masquerade) needs the node's netfilter, which a redirect would skip. */
	pk.family = p->family;
	__builtin_memcpy(pk.addr, p->daddr, 16);
	if (!bpf_map_lookup_elem(&pn_pods, &pk))
		return -1;
	fib.ifindex = from;
	fib.l4_protocol = p->proto;
	fib.sport = p->sport;
	fib.dport = p->dport;
	/* tot_len stays 0: the kernel then checks the skb itself against the route's MTU, which
	 * understands GSO (a 64 KiB TCP segment is not "too big" for a 1500-byte link). */
	if (p->family == 4) {
		fib.family = 2; /* AF_INET */
		__builtin_memcpy(&fib.ipv4_src, p->saddr, 4);
		__builtin_memcpy(&fib.ipv4_dst, p->daddr, 4);
	} else {
		fib.family = 10; /* AF_INET6 */
		__builtin_memcpy(fib.ipv6_src, p->saddr, 16);
		__builtin_memcpy(fib.ipv6_dst, p->daddr, 16);
	}
	rc = bpf_fib_lookup(skb, &fib, sizeof(fib), BPF_FIB_LOOKUP_DIRECT);
	if ((rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH) || fib.ifindex == from)
		return -1;
	if (forward_hop(skb, p, 0) < 0)
		return -1;
	count(PN_CNT_REDIRECTED_NEIGH);
	return bpf_redirect_neigh(fib.ifindex, 0, 0, 0);
}

static __always_inline int from_pod_ip(struct __sk_buff *skb, __u32 ifindex, const struct pn_endpoint *ep,
				       const struct pkt *p)
{
	struct pn_local_value *to = local_pod(p);
	__u16 tag = to && to->ifindex != ifindex ? pn_peer_tag(to->ifindex) : 0;
	int verdict, redirected;

	verdict = enforce(skb, ifindex, ep, p, PN_DIR_EGRESS, tag);
	if (verdict != TC_ACT_OK && verdict != PN_PASS_ADMITTED)
		return verdict;
	if (to && to->ifindex == ifindex)
		return TC_ACT_OK; /* to its own address: the node sends it back */
	if (to)
		redirected = redirect_local(skb, p, ifindex, to, PN_CNT_REDIRECTED, verdict == PN_PASS_ADMITTED);
	else
		redirected = redirect_remote(skb, p, ifindex);
	return redirected < 0 ? TC_ACT_OK : redirected;
}

SEC("tc")
int pn_from_pod(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex;
	struct pn_endpoint *ep = bpf_map_lookup_elem(&pn_endpoints, &ifindex);
	struct pkt p = {};
	__u8 smac[ETH_ALEN] = {};
	int proto;

	count(PN_CNT_PACKETS);
	proto = parse(skb, &p, smac);
	if (!ep)
		return drop(PN_DROP_NO_ENDPOINT, PN_DIR_EGRESS, ifindex, ep, 0, 0, &p);
	if (!mac_eq(smac, ep->mac))
		return drop(PN_DROP_INVALID_SMAC, PN_DIR_EGRESS, ifindex, ep, 0, 0, &p);
	if (proto == ETH_P_ARP_) {
		/* the pod may only speak for itself: its MAC, its address (or 0.0.0.0, a probe) */
		__u32 spa;

		__builtin_memcpy(&spa, p.arp_spa, 4);
		if (!p.arp_ok || !mac_eq(p.arp_sha, ep->mac) ||
		    (spa != 0 && (!(ep->flags & PN_EP_HAS_V4) || spa != ep->ipv4)))
			return drop(PN_DROP_INVALID_SIP, PN_DIR_EGRESS, ifindex, ep, 0, 0, &p);
		count(PN_CNT_FORWARDED);
		return TC_ACT_OK;
	}
	if (proto == ETH_P_IP) {
		if (!(ep->flags & PN_EP_HAS_V4) || !addr_eq(p.saddr, (const __u8 *)&ep->ipv4, 4))
			return drop(PN_DROP_INVALID_SIP, PN_DIR_EGRESS, ifindex, ep, 0, 0, &p);
		return from_pod_ip(skb, ifindex, ep, &p);
	}
	if (proto == ETH_P_IPV6) {
		if (p.nd) {
			count(PN_CNT_FORWARDED);
			return TC_ACT_OK;
		}
		if (!(ep->flags & PN_EP_HAS_V6) || !addr_eq(p.saddr, ep->ipv6, 16))
			return drop(PN_DROP_INVALID_SIP, PN_DIR_EGRESS, ifindex, ep, 0, 0, &p);
		return from_pod_ip(skb, ifindex, ep, &p);
	}
	return drop(PN_DROP_INVALID, PN_DIR_EGRESS, ifindex, ep, 0, 0, &p);
}

SEC("tc")
int pn_to_pod(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex;
	struct pn_endpoint *ep = bpf_map_lookup_elem(&pn_endpoints, &ifindex);
	struct pkt p = {};
	__u8 smac[ETH_ALEN] = {};
	int proto;

	count(PN_CNT_PACKETS);
	proto = parse(skb, &p, smac);
	if (!ep)
		return drop(PN_DROP_NO_ENDPOINT, PN_DIR_INGRESS, ifindex, ep, 0, 0, &p);
	if (proto == ETH_P_ARP_ || (proto == ETH_P_IPV6 && p.nd)) {
		count(PN_CNT_FORWARDED);
		return TC_ACT_OK;
	}
	if (proto == ETH_P_IP || proto == ETH_P_IPV6)
		return enforce(skb, ifindex, ep, &p, PN_DIR_INGRESS, 0);
	return drop(PN_DROP_INVALID, PN_DIR_INGRESS, ifindex, ep, 0, 0, &p);
}

/* On the ingress of the node's uplink (and overlay) devices: a packet from another node for a pod of
 * this node is judged by the pod's ingress policy here and handed straight to the pod's eth0, as
 * redirect_local does for a local source, without the node's forwarding and the host veth's egress
 * (where pn_to_pod would judge it the same way, with the same conntrack entries). Anything else (for
 * the node itself, for a Service or hostPort before the node's DNAT, neighbour discovery, not addressed
 * to this device's MAC) goes on into the node's stack untouched. */
SEC("tc")
int pn_from_uplink(struct __sk_buff *skb)
{
	struct pkt p = {};
	__u8 smac[ETH_ALEN] = {};
	struct pn_local_value *to;
	int proto, verdict;

	if (skb->pkt_type != 0) /* PACKET_HOST: addressed to this device */
		return TC_ACT_OK;
	proto = parse(skb, &p, smac);
	if ((proto != ETH_P_IP && proto != ETH_P_IPV6) || p.nd)
		return TC_ACT_OK;
	to = local_pod(&p);
	if (!to)
		return TC_ACT_OK;
	verdict = redirect_local(skb, &p, 0, to, PN_CNT_REDIRECTED_UPLINK, 0);
	return verdict < 0 ? TC_ACT_OK : verdict;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
