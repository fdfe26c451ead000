// SPDX-License-Identifier: (MIT OR Apache-2.0)
//
// ferrovs fast path (included by steer.bpf.c).
//
// The workers decide every flow; once one is established they put its
// rewrite in `flows`, keyed by the frame's own tuple (both directions for
// NAT), and this program forwards its packets in the kernel as the worker
// would: DR rewrites the MACs, NAT the address, port and checksums
// (incrementally, RFC 1624; a UDP checksum of 0 stays 0), TUN adds an outer
// IPv4 header in front. The frame goes back out of the link it came in on
// (XDP_TX) or, two-armed, is redirected to the other one. It counts packets
// and bytes and stamps the last time it saw the flow; the daemon reads those
// for the counters and the expiry.
//
// It never decides: SYN, FIN and RST (which move TCP's state), fragments,
// IPv4 options, a TUN packet over the MTU with DF, and anything it does not
// parse go to the socket, as every flow not in the map does; `punts` counts
// those of flows in the map by reason. A checksum a sender's offload left partial (veth, bridges: the
// metadata that says so does not reach XDP) is finished here first, as the
// worker does.

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_FLOWS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct flow_key);
	__type(value, struct flow_val);
} flows SEC(".maps");

// Key 0: 1 while the fast path is on.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} fast_on SEC(".maps");

#define IP_MF 0x2000
#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define IP_DF 0x4000

static __always_inline __u16 fold(__u32 s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)s;
}

// Out of interface `ifindex`: XDP_REDIRECT, or XDP_DROP if the helper
// refused (a constant either way, so the caller's ">= 0" holds).
static __always_inline int redirect(__u32 ifindex)
{
	return bpf_redirect(ifindex, 0) == XDP_REDIRECT ? XDP_REDIRECT : XDP_DROP;
}

// RFC 1624 over a 32-bit field, on the raw (network order) words.
static __always_inline __u16 adjust4(__u16 sum, __u32 from, __u32 to)
{
	__u32 s = (__u16)~sum;

	s += (__u16)~(from >> 16) + (__u16)~(from & 0xffff);
	s += (to >> 16) + (to & 0xffff);
	return ~fold(s);
}

static __always_inline __u16 adjust2(__u16 sum, __u16 from, __u16 to)
{
	__u32 s = (__u16)~sum;

	s += (__u16)~from + to;
	return ~fold(s);
}

// The checksum of a 20-byte IPv4 header.
static __always_inline __u16 ip_checksum(struct iphdr *ip)
{
	__u16 *w = (void *)ip;
	__u32 s = 0;
	int i;

#pragma unroll
	for (i = 0; i < 10; i++)
		s += w[i];
	return ~fold(s);
}

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct punt_counts);
} punts SEC(".maps");

static __always_inline void count(__u32 why)
{
	__u32 zero = 0;
	struct punt_counts *c = bpf_map_lookup_elem(&punts, &zero);

	if (c && why < PUNT_N)
		c->n[why]++;
}

static __always_inline int punt(__u32 why)
{
	count(why);
	return -1;
}

// Checksummed two bytes at a time, up to this many L4 bytes (a 1500-byte
// MTU's segments). One loop with one exit a turn: the verifier's walk of it
// grows with its length, where chunked loops in a row grow as the product.
#define SUM_MAX 1480

// Finish a checksum the sender's offload left partial, as the worker would
// (Headers::fill_l4_checksum): the field holds the pseudo-header sum, so
// the sum of the whole segment with the field as it is, complemented, is
// the checksum. 0 when done, -1 when the segment is longer than summed here
// or runs past the frame.
static __always_inline int complete(__u8 *l4, void *end, __u32 len, __u16 *csum, int udp)
{
	__u32 s = 0, off = 0, c;
	int i;

	if (len > SUM_MAX)
		return -1;
	for (i = 0; i < SUM_MAX / 2; i++) {
		__u8 *p = l4 + off;

		if (off + 2 > len)
			break;
		if ((void *)(p + 2) > end)
			return -1;
		s += *(__u16 *)p;
		off += 2;
	}
	if (off < len) {
		__u8 *p = l4 + off;

		if ((void *)(p + 1) > end)
			return -1;
		// The odd byte is the high-order half of its word on the wire,
		// which is the first byte in memory.
		s += *p;
	}
	c = (__u16)~fold(s);
	*csum = (udp && c == 0) ? 0xffff : c;
	return 0;
}

// complete() as a function of its own, verified once on its own rather than
// at each call with each caller's state: the segment at `l4_off` of `len`
// bytes, its checksum field at `csum_off`, both from the frame's start. 0
// when done, -1 when it cannot be. The caller's packet pointers are void
// after it.
__attribute__((noinline)) int fast_complete(struct xdp_md *ctx, __u32 l4_off, __u32 len, __u32 csum_off, __u32 udp)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u16 *csum;

	// The callers' offsets are Ethernet and a 20-byte IPv4 header or
	// IPv6's, so these masks change nothing; they are the bound the
	// verifier needs (a comparison's, clang folds away).
	l4_off &= 0x7f;
	csum_off &= 0x7f;
	csum = data + csum_off;
	if ((void *)(csum + 1) > end)
		return -1;
	return complete(data + l4_off, end, len, csum, udp);
}

// ---- steps both families share ----

// A frame's TCP or UDP header, as the fast path reads it.
struct l4 {
	__u16 *ports;
	__u16 *csum;
	// TCP's flags; 0 for UDP.
	__u8 flags;
	__u8 udp;
};

static __always_inline int fast_is_on(void)
{
	__u32 zero = 0, *on = bpf_map_lookup_elem(&fast_on, &zero);

	return on && *on;
}

// The TCP or UDP header at `p`: 0, or -1 when the protocol is neither or
// the header runs past the frame.
static __always_inline int l4_parse(__u8 *p, void *end, __u8 proto, struct l4 *h)
{
	if (proto == IPPROTO_TCP) {
		if ((void *)(p + 20) > end)
			return -1;
		h->csum = (void *)(p + 16);
		h->flags = p[13];
		h->udp = 0;
	} else if (proto == IPPROTO_UDP) {
		if ((void *)(p + 8) > end)
			return -1;
		h->csum = (void *)(p + 6);
		h->flags = 0;
		h->udp = 1;
	} else {
		return -1;
	}
	h->ports = (void *)p;
	return 0;
}

// Finish the checksum if the sender's offload left it partial (the field
// holds the folded pseudo-header sum `pseudo`), as the worker does, then
// read the header again at `l4_off` from the frame's start (a constant:
// after fast_complete no packet pointer is valid). 0 when the frame goes
// on, -1 when the header is gone, else the punt's verdict.
static __always_inline int partial(struct xdp_md *ctx, __u32 l4_off, __u32 len, __u32 pseudo, __u8 proto,
				   struct l4 *h)
{
	void *data, *end;

	if (!*h->csum || *h->csum != fold(pseudo))
		return 0;
	if (fast_complete(ctx, l4_off, len, l4_off + (h->udp ? 6 : 16), h->udp))
		return punt(PUNT_SHORT);
	count(PARTIAL_DONE);
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	return l4_parse(data + l4_off, end, proto, h);
}

// Counted as the worker counts: `len`, the frame as sent (a TUN outer
// header included).
static __always_inline void touch(__u64 *pkts, __u64 *bytes, __u64 *last_seen, __u64 len)
{
	__sync_fetch_and_add(pkts, 1);
	__sync_fetch_and_add(bytes, len);
	*last_seen = bpf_ktime_get_ns();
}

// The new checksum of a NAT'd TCP or UDP segment (a UDP sum of 0 is
// "none", so one that comes out as 0 is sent as 0xffff).
static __always_inline __u16 l4_sum(__u16 c, int udp)
{
	return (udp && c == 0) ? 0xffff : c;
}

// Out with the flow's MACs: back out of the link it came in on (XDP_TX) or,
// two-armed, redirected to `ifindex`.
static __always_inline int send(struct ethhdr *eth, const __u8 *smac, const __u8 *dmac, __u32 ifindex)
{
	__builtin_memcpy(eth->h_dest, dmac, 6);
	__builtin_memcpy(eth->h_source, smac, 6);
	return ifindex ? redirect(ifindex) : XDP_TX;
}

// Room for an outer header of `hlen` bytes in front of the IP packet, and
// an Ethernet header of `proto` with the flow's MACs before it: the outer
// header's start, or 0 when the frame cannot grow (then no packet pointer
// is valid and the frame cannot go to the socket either: XDP_DROP).
static __always_inline void *push_outer(struct xdp_md *ctx, int hlen, const __u8 *smac, const __u8 *dmac,
					 __u16 proto)
{
	void *data, *end;
	struct ethhdr *eth;

	if (bpf_xdp_adjust_head(ctx, -hlen))
		return 0;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	eth = data;
	if ((void *)(eth + 1) + hlen > end)
		return 0;
	__builtin_memcpy(eth->h_dest, dmac, 6);
	__builtin_memcpy(eth->h_source, smac, 6);
	eth->h_proto = bpf_htons(proto);
	return eth + 1;
}

// ---- IPv4 ----

static __always_inline struct flow_val *lookup4(struct iphdr *ip, struct l4 *h)
{
	struct flow_key key = {
		.src = ip->saddr,
		.dst = ip->daddr,
		.sport = h->ports[0],
		.dport = h->ports[1],
		.proto = ip->protocol,
	};

	return bpf_map_lookup_elem(&flows, &key);
}

// Why a frame of a flow in the map goes to the socket all the same, or -1
// when it does not.
static __always_inline int punt_reason4(struct iphdr *ip, struct l4 *h, struct flow_val *v, void *end)
{
	__u16 inner_len = bpf_ntohs(ip->tot_len);

	if (ip->frag_off & bpf_htons(IP_MF))
		return PUNT_FRAGMENT;
	if (ip->ihl != 5)
		return PUNT_OPTIONS;
	if (h->flags & (TCP_SYN | TCP_FIN | TCP_RST))
		return PUNT_FLAGS;
	if (inner_len < 28 || (void *)ip + inner_len > end)
		return PUNT_SHORT;
	if (v->action == FAST_TUN && inner_len + 20 > v->mtu && (ip->frag_off & bpf_htons(IP_DF)))
		return PUNT_MTU;
	return -1;
}

static __always_inline __u32 pseudo4(struct iphdr *ip, __u16 l4len)
{
	return (ip->saddr >> 16) + (ip->saddr & 0xffff) + (ip->daddr >> 16) + (ip->daddr & 0xffff) +
	       bpf_htons(ip->protocol) + bpf_htons(l4len);
}

// NAT: the destination (to the server) or the source (a reply) becomes the
// flow's address and port; both checksums follow (RFC 1624).
static __always_inline void nat4(struct iphdr *ip, struct l4 *h, struct flow_val *v)
{
	__u32 old = v->to_server ? ip->daddr : ip->saddr;
	__u16 *port = &h->ports[v->to_server ? 1 : 0];

	ip->check = adjust4(ip->check, old, v->addr);
	// UDP without a checksum (0) stays without one.
	if (!h->udp || *h->csum)
		*h->csum = l4_sum(adjust2(adjust4(*h->csum, old, v->addr), *port, v->port), h->udp);
	if (v->to_server)
		ip->daddr = v->addr;
	else
		ip->saddr = v->addr;
	*port = v->port;
}

// TUN: the IPv4 packet inside an outer IPv4 header to the real server,
// which copies its TOS, TTL and DF.
static __always_inline int tun4(struct xdp_md *ctx, struct iphdr *ip, struct flow_val *v)
{
	__u8 tos = ip->tos, ttl = ip->ttl;
	__u16 df = ip->frag_off & bpf_htons(IP_DF), inner_len = bpf_ntohs(ip->tot_len);
	struct iphdr *outer = push_outer(ctx, sizeof(*outer), v->smac, v->dmac, ETH_P_IP);

	if (!outer)
		return XDP_DROP;
	outer->version = 4;
	outer->ihl = 5;
	outer->tos = tos;
	outer->tot_len = bpf_htons(inner_len + 20);
	// As the kernel's ip_select_ident for a packet no socket sent: 0 when
	// DF makes it atomic (RFC 6864), else one that varies (the worker
	// counts, which no shared-nothing CPU here can).
	outer->id = df ? 0 : (__u16)bpf_get_prandom_u32();
	outer->frag_off = df;
	outer->ttl = ttl;
	outer->protocol = IPPROTO_IPIP;
	outer->check = 0;
	outer->saddr = v->tun_src;
	outer->daddr = v->addr;
	outer->check = ip_checksum(outer);
	return v->ifindex ? redirect(v->ifindex) : XDP_TX;
}

// XDP_TX, XDP_REDIRECT or XDP_DROP for a frame forwarded here, -1 to hand
// it to the socket. A function of its own (as fast_path6): whichever way
// it returns, the caller goes on from one state, so the verifier walks
// the rest once.
static __attribute__((noinline)) int fast_path(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct iphdr *ip = data + sizeof(struct ethhdr);
	__u64 len = end - data;
	struct flow_val *v;
	struct l4 h;
	int why;

	if (!fast_is_on() || (void *)(ip + 1) > end || ip->ihl < 5)
		return -1;
	// A later fragment carries no ports to look up.
	if (ip->frag_off & bpf_htons(IP_OFFSET_MASK))
		return -1;
	if (l4_parse((void *)ip + ip->ihl * 4, end, ip->protocol, &h))
		return -1;
	v = lookup4(ip, &h);
	if (!v)
		return -1;
	why = punt_reason4(ip, &h, v, end);
	if (why >= 0)
		return punt(why);
	{
		__u16 l4len = bpf_ntohs(ip->tot_len) - 20;

		why = partial(ctx, sizeof(struct ethhdr) + 20, l4len, pseudo4(ip, l4len), ip->protocol, &h);
	}
	if (why)
		return why;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	ip = data + sizeof(struct ethhdr);
	if ((void *)(ip + 1) > end)
		return -1;
	touch(&v->pkts, &v->bytes, &v->last_seen, len + (v->action == FAST_TUN ? sizeof(struct iphdr) : 0));
	if (v->action == FAST_NAT)
		nat4(ip, &h, v);
	if (v->action == FAST_TUN)
		return tun4(ctx, ip, v);
	return send(data, v->smac, v->dmac, v->ifindex);
}

// ---- IPv6 ----
//
// The same, keyed by 16-byte addresses; no header checksum to keep, a TUN
// packet is wrapped in a 40-byte IPv6 header (IPv6-in-IPv6), and one over
// the link's MTU goes to the worker (which answers "packet too big": IPv6
// routers never fragment). Only frames with no extension header are looked
// up: the rest are the worker's.

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_FLOWS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct flow6_key);
	__type(value, struct flow6_val);
} flows6 SEC(".maps");

// RFC 1624 over a 128-bit field.
static __always_inline __u16 adjust16(__u16 sum, const __u16 *from, const __u8 *to_bytes)
{
	const __u16 *to = (const __u16 *)to_bytes;
	__u32 s = (__u16)~sum;
	int i;

#pragma unroll
	for (i = 0; i < 8; i++)
		s += (__u16)~from[i] + to[i];
	return ~fold(s);
}

static __always_inline struct flow6_val *lookup6(struct ipv6hdr *ip, struct l4 *h)
{
	struct flow6_key key = {
		.sport = h->ports[0],
		.dport = h->ports[1],
		.proto = ip->nexthdr,
	};

	__builtin_memcpy(key.src, &ip->saddr, 16);
	__builtin_memcpy(key.dst, &ip->daddr, 16);
	return bpf_map_lookup_elem(&flows6, &key);
}

static __always_inline __u32 pseudo6(struct ipv6hdr *ip, __u16 plen)
{
	__u16 *w = (void *)&ip->saddr;
	__u32 s = 0;
	int i;

#pragma unroll
	for (i = 0; i < 16; i++)
		s += w[i];
	return s + bpf_htons(plen) + bpf_htons(ip->nexthdr);
}

static __always_inline void nat6(struct ipv6hdr *ip, struct l4 *h, struct flow6_val *v)
{
	__u16 *old = v->to_server ? (void *)&ip->daddr : (void *)&ip->saddr;
	__u16 *port = &h->ports[v->to_server ? 1 : 0];

	// IPv6 makes the UDP checksum mandatory: no "none" to keep.
	*h->csum = l4_sum(adjust2(adjust16(*h->csum, old, v->addr), *port, v->port), h->udp);
	__builtin_memcpy(old, v->addr, 16);
	*port = v->port;
}

// TUN: the IPv6 packet inside an outer IPv6 header with its traffic class
// and hop limit, flow label 0.
static __always_inline int tun6(struct xdp_md *ctx, struct ipv6hdr *ip, struct flow6_val *v)
{
	__u8 tc_hi = ((__u8 *)ip)[0] & 0x0f, tc_lo = ((__u8 *)ip)[1] & 0xf0, hops = ip->hop_limit;
	__u16 plen = bpf_ntohs(ip->payload_len);
	struct ipv6hdr *outer = push_outer(ctx, sizeof(*outer), v->smac, v->dmac, ETH_P_IPV6);
	__u8 *b = (void *)outer;

	if (!outer)
		return XDP_DROP;
	b[0] = 0x60 | tc_hi;
	b[1] = tc_lo;
	b[2] = 0;
	b[3] = 0;
	outer->payload_len = bpf_htons(plen + 40);
	outer->nexthdr = 41;
	outer->hop_limit = hops;
	__builtin_memcpy(&outer->saddr, v->tun_src, 16);
	__builtin_memcpy(&outer->daddr, v->addr, 16);
	return v->ifindex ? redirect(v->ifindex) : XDP_TX;
}

// As fast_path, for IPv6.
static __attribute__((noinline)) int fast_path6(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ipv6hdr *ip = data + sizeof(struct ethhdr);
	__u64 len = end - data;
	struct flow6_val *v;
	struct l4 h;
	__u16 plen;
	int why;

	if (!fast_is_on() || (void *)(ip + 1) > end)
		return -1;
	if (l4_parse((void *)(ip + 1), end, ip->nexthdr, &h))
		return -1;
	v = lookup6(ip, &h);
	if (!v)
		return -1;
	if (h.flags & (TCP_SYN | TCP_FIN | TCP_RST))
		return punt(PUNT_FLAGS);
	plen = bpf_ntohs(ip->payload_len);
	if (plen < 8 || (void *)(ip + 1) + plen > end)
		return punt(PUNT_SHORT);
	if (v->action == FAST_TUN && plen + 80 > v->mtu)
		return punt(PUNT_MTU);
	why = partial(ctx, sizeof(struct ethhdr) + sizeof(*ip), plen, pseudo6(ip, plen), ip->nexthdr, &h);
	if (why)
		return why;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	ip = data + sizeof(struct ethhdr);
	if ((void *)(ip + 1) > end)
		return -1;
	touch(&v->pkts, &v->bytes, &v->last_seen, len + (v->action == FAST_TUN ? sizeof(struct ipv6hdr) : 0));
	if (v->action == FAST_NAT)
		nat6(ip, &h, v);
	if (v->action == FAST_TUN)
		return tun6(ctx, ip, v);
	return send(data, v->smac, v->dmac, v->ifindex);
}
