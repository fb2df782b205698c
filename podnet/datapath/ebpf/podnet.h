/* Map layouts shared by the tc programs (podnet.bpf.c) and the Python codecs (codecs.py).
 *
 * Every struct here is packed by hand to natural alignment with explicit padding, so the Python
 * side can mirror it with a fixed struct format. Change both sides together.
 */
#ifndef PODNET_H
#define PODNET_H

#include <linux/types.h>

#define PN_DIR_INGRESS 0
#define PN_DIR_EGRESS 1

#define PN_VERDICT_ALLOW 1
#define PN_VERDICT_DENY 2
#define PN_VERDICT_AUDIT 3 /* would be denied, but the deciding policy is in audit mode: pass, record */

#define PN_EVENT_POLICY_VERDICT 1
#define PN_EVENT_DROP 2

/* Drop reasons: Cilium's numbers, so flows read like Hubble's. */
#define PN_DROP_INVALID_SMAC 130
#define PN_DROP_INVALID_SIP 132
#define PN_DROP_POLICY 133
#define PN_DROP_INVALID 134
#define PN_DROP_NO_ENDPOINT 160
#define PN_DROP_NO_POLICY 181

#define PN_EP_HAS_V4 1
#define PN_EP_HAS_V6 2
#define PN_EP_OWNS_CLSACT 4

#define PN_WORLD_V4 2
#define PN_WORLD_V6 3

/* Counters (per-CPU array indexes). */
#define PN_CNT_PACKETS 0
#define PN_CNT_FORWARDED 1
#define PN_CNT_DROP_POLICY 2
#define PN_CNT_DROP_SPOOF 3
#define PN_CNT_DROP_OTHER 4
#define PN_CNT_NEW_CONN 5
#define PN_CNT_CT_HIT 6
#define PN_CNT_EVENTS_LOST 7
#define PN_CNT_EVENTS_AGGREGATED 8
#define PN_CNT_REDIRECTED 9
#define PN_CNT_REDIRECTED_NEIGH 10
#define PN_CNT_RELATED 11
#define PN_CNT_REDIRECTED_UPLINK 12
#define PN_CNT_PEER_ADMITTED 13 /* a local destination's conntrack lookup skipped (pn_ct_value.peer) */
#define PN_CNT_MAX 16

/* pn_endpoints: host veth ifindex -> the pod behind it. 40 bytes. */
struct pn_endpoint {
	__u32 identity;
	__u32 ipv4;        /* network order */
	__u8 ipv6[16];
	__u8 mac[6];       /* the pod's MAC (source of everything the pod sends) */
	__u8 flags;        /* PN_EP_* */
	__u8 pad;
	__u8 host_mac[6];  /* the host veth's MAC: the pod's gateway, source of what it receives */
	__u16 pad2;
};

/* pn_local: a local pod's address -> its host veth ifindex and the MACs of its link (for redirects
 * to local pods: the frame's addresses without a pn_endpoints lookup). */
struct pn_local_key {
	__u8 family;
	__u8 pad[3];
	__u8 addr[16];
};

struct pn_local_value {
	__u32 ifindex;     /* the pod's host veth */
	__u8 mac[6];       /* the pod's eth0 */
	__u8 host_mac[6];  /* the host veth: the pod's gateway */
};

/* pn_ipcache: LPM key, data = family + 3 zero bytes + address (16 bytes, v4 in the first 4). */
struct pn_ipcache_key {
	__u32 prefixlen;   /* 32 + address prefix length */
	__u8 family;       /* 4 or 6 */
	__u8 pad[3];
	__u8 addr[16];
};

/* pn_policy: LPM key over (endpoint, peer identity, direction, protocol, port prefix). */
struct pn_policy_key {
	__u32 prefixlen;   /* 80 + port prefix length */
	__u32 endpoint;    /* host veth ifindex (host order: always fully covered by the prefix) */
	__u32 peer;        /* identity; 0 = wildcard */
	__u8 direction;
	__u8 protocol;     /* 6, 17, 132; 0 = any other protocol (port prefix length 0) */
	__u16 port;        /* network order */
};

struct pn_policy_value {
	__u32 rule_id;     /* 0: no rule (default allow) */
	__u8 verdict;      /* PN_VERDICT_* */
	__u8 tier;         /* 0 default, 1 admin, 2 network, 3 baseline */
	__u16 pad;
};

/* pn_ct: one entry per connection per endpoint, keyed from the endpoint's point of view, so a
 * packet and its reply find the same entry at the same endpoint. 44 bytes. */
struct pn_ct_key {
	__u32 endpoint;
	__u8 family;
	__u8 protocol;
	__u16 lport;       /* network order */
	__u16 rport;       /* network order */
	__u16 pad;
	__u8 laddr[16];
	__u8 raddr[16];
};

struct pn_ct_value {
	__u64 created_ns;
	__u64 expires_ns;
	__u64 packets;
	__u64 bytes;
	__u32 rule_id;
	__u8 origin;       /* PN_DIR_* of the packet that opened the connection */
	__u8 closing;
	__u16 peer;        /* an endpoint's egress entry for a TCP connection to a pod of this node: that
			    * pod's tag (pn_peer_tag of its ifindex) once its ingress admitted the connection;
			    * 0 otherwise. The connection's later packets then skip the pod's own lookup. */
};

/* A local endpoint's tag in pn_ct_value.peer: never 0. */
static inline __u16 pn_peer_tag(__u32 ifindex)
{
	return (__u16)(ifindex % 0xffff) + 1;
}

/* pn_drops: aggregation of drop events per flow and reason. */
struct pn_drop_key {
	struct pn_ct_key flow;
	__u32 reason;
};

struct pn_drop_value {
	__u64 last_report_ns;
	__u32 suppressed;
	__u32 pad;
};

/* Ring-buffer record. 72 bytes. */
struct pn_event {
	__u64 time_ns;
	__u32 endpoint;
	__u32 identity;
	__u32 peer_identity;
	__u32 rule_id;
	__u32 count;       /* packets this record stands for (drops are aggregated) */
	__u8 type;         /* PN_EVENT_* */
	__u8 verdict;      /* PN_VERDICT_* */
	__u8 reason;       /* PN_DROP_* or 0 */
	__u8 direction;    /* PN_DIR_* */
	__u8 family;
	__u8 protocol;
	__u8 tcp_flags;
	__u8 is_reply;
	__u16 sport;       /* host order */
	__u16 dport;
	__u8 saddr[16];
	__u8 daddr[16];
};

#endif
