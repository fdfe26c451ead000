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

// XDP_TX for a frame forwarded here, -1 to hand it to the socket. A
// function of its own (as fast_path6): whichever way it returns, the
// caller goes on from one state, so the verifier walks the rest once.
static __attribute__((noinline)) int fast_path(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct iphdr *ip = data + sizeof(struct ethhdr);
	__u32 zero = 0, *on = bpf_map_lookup_elem(&fast_on, &zero);
	struct flow_key key = {};
	struct flow_val *v;
	struct ethhdr *eth;
	__u16 *ports, *csum = 0, l4len, inner_len, hlen;
	__u64 len = end - data;
	__u8 *l4, flags = 0;
	__u32 pseudo;
	int tcp = 0;

	// A later fragment carries no ports to look up.
	if ((void *)(ip + 1) > end)
		return -1;
	if (!on || !*on || ip->ihl < 5 || (ip->frag_off & bpf_htons(IP_OFFSET_MASK)))
		return -1;
	hlen = ip->ihl * 4;
	l4 = (void *)ip + hlen;
	ports = (void *)l4;
	if (ip->protocol == IPPROTO_TCP) {
		if ((void *)(l4 + 20) > end)
			return -1;
		csum = (void *)(l4 + 16);
		flags = l4[13];
		tcp = 1;
	} else if (ip->protocol == IPPROTO_UDP) {
		if ((void *)(l4 + 8) > end)
			return -1;
		csum = (void *)(l4 + 6);
	} else {
		return -1;
	}
	key.src = ip->saddr;
	key.dst = ip->daddr;
	key.sport = ports[0];
	key.dport = ports[1];
	key.proto = ip->protocol;
	v = bpf_map_lookup_elem(&flows, &key);
	if (!v)
		return -1;
	if (ip->frag_off & bpf_htons(IP_MF))
		return punt(PUNT_FRAGMENT);
	if (hlen != 20)
		return punt(PUNT_OPTIONS);
	if (flags & (TCP_SYN | TCP_FIN | TCP_RST))
		return punt(PUNT_FLAGS);
	inner_len = bpf_ntohs(ip->tot_len);
	if (inner_len < 28 || (void *)ip + inner_len > end)
		return punt(PUNT_SHORT);
	l4len = inner_len - 20;
	pseudo = (ip->saddr >> 16) + (ip->saddr & 0xffff) + (ip->daddr >> 16) + (ip->daddr & 0xffff) +
		 bpf_htons(ip->protocol) + bpf_htons(l4len);
	if (v->action == FAST_TUN && inner_len + 20 > v->mtu && (ip->frag_off & bpf_htons(IP_DF)))
		return punt(PUNT_MTU);
	if (*csum && *csum == fold(pseudo)) {
		if (fast_complete(ctx, (void *)l4 - data, l4len, (void *)csum - data, ip->protocol == IPPROTO_UDP))
			return punt(PUNT_SHORT);
		count(PARTIAL_DONE);
		data = (void *)(long)ctx->data;
		end = (void *)(long)ctx->data_end;
		ip = data + sizeof(struct ethhdr);
		l4 = (void *)ip + 20;
		if ((void *)(l4 + (tcp ? 20 : 8)) > end)
			return -1;
		ports = (void *)l4;
		csum = (void *)(l4 + (tcp ? 16 : 6));
	}
	// Counted as the worker counts: the frame as sent.
	__sync_fetch_and_add(&v->pkts, 1);
	__sync_fetch_and_add(&v->bytes, len + (v->action == FAST_TUN ? sizeof(struct iphdr) : 0));
	v->last_seen = bpf_ktime_get_ns();
	if (v->action == FAST_NAT) {
		__u32 old = v->to_server ? ip->daddr : ip->saddr;
		__u16 oldp = v->to_server ? ports[1] : ports[0];

		ip->check = adjust4(ip->check, old, v->addr);
		if (ip->protocol == IPPROTO_TCP || *csum) {
			__u16 c = adjust2(adjust4(*csum, old, v->addr), oldp, v->port);

			*csum = (ip->protocol == IPPROTO_UDP && c == 0) ? 0xffff : c;
		}
		if (v->to_server) {
			ip->daddr = v->addr;
			ports[1] = v->port;
		} else {
			ip->saddr = v->addr;
			ports[0] = v->port;
		}
	}
	if (v->action == FAST_TUN) {
		__u8 tos = ip->tos, ttl = ip->ttl;
		__u16 df = ip->frag_off & bpf_htons(IP_DF);
		__u32 src = v->tun_src, dst = v->addr;
		__u8 smac[6], dmac[6];
		struct iphdr *outer;

		__builtin_memcpy(smac, v->smac, 6);
		__builtin_memcpy(dmac, v->dmac, 6);
		// A failed head adjustment leaves no packet pointer valid: the
		// frame cannot go on to the socket path either.
		if (bpf_xdp_adjust_head(ctx, -(int)sizeof(struct iphdr)))
			return XDP_DROP;
		data = (void *)(long)ctx->data;
		end = (void *)(long)ctx->data_end;
		eth = data;
		outer = (void *)(eth + 1);
		if ((void *)(outer + 1) > end)
			return XDP_DROP;
		__builtin_memcpy(eth->h_dest, dmac, 6);
		__builtin_memcpy(eth->h_source, smac, 6);
		eth->h_proto = bpf_htons(ETH_P_IP);
		outer->version = 4;
		outer->ihl = 5;
		outer->tos = tos;
		outer->tot_len = bpf_htons(inner_len + 20);
		// As the kernel's ip_select_ident for a packet no socket sent: 0
		// when DF makes it atomic (RFC 6864), else one that varies (the
		// worker counts, which no shared-nothing CPU here can).
		outer->id = df ? 0 : (__u16)bpf_get_prandom_u32();
		outer->frag_off = df;
		outer->ttl = ttl;
		outer->protocol = IPPROTO_IPIP;
		outer->check = 0;
		outer->saddr = src;
		outer->daddr = dst;
		outer->check = ip_checksum(outer);
		if (v->ifindex)
			return redirect(v->ifindex);
		return XDP_TX;
	}
	eth = data;
	__builtin_memcpy(eth->h_dest, v->dmac, 6);
	__builtin_memcpy(eth->h_source, v->smac, 6);
	if (v->ifindex)
		return redirect(v->ifindex);
	return XDP_TX;
}

// IPv6: the same, keyed by 16-byte addresses; no header checksum to keep,
// a TUN packet is wrapped in a 40-byte IPv6 header (IPv6-in-IPv6), and one
// over the link's MTU goes to the worker (which answers "packet too big":
// IPv6 routers never fragment). Only frames with no extension header are
// looked up: the rest are the worker's.

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

// XDP_TX, XDP_REDIRECT or XDP_DROP for a frame forwarded here, -1 to hand
// it to the socket.
static __attribute__((noinline)) int fast_path6(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ipv6hdr *ip = data + sizeof(struct ethhdr);
	__u32 zero = 0, *on = bpf_map_lookup_elem(&fast_on, &zero);
	struct flow6_key key = {};
	struct flow6_val *v;
	struct ethhdr *eth;
	__u16 *ports, *csum, *w, plen;
	__u64 len = end - data;
	__u8 *l4 = (void *)(ip + 1), flags = 0;
	int tcp = 0;
	__u32 pseudo = 0;
	int i;

	if ((void *)(ip + 1) > end || !on || !*on)
		return -1;
	if (ip->nexthdr == IPPROTO_TCP) {
		if ((void *)(l4 + 20) > end)
			return -1;
		csum = (void *)(l4 + 16);
		flags = l4[13];
		tcp = 1;
	} else if (ip->nexthdr == IPPROTO_UDP) {
		if ((void *)(l4 + 8) > end)
			return -1;
		csum = (void *)(l4 + 6);
	} else {
		return -1;
	}
	ports = (void *)l4;
	__builtin_memcpy(key.src, &ip->saddr, 16);
	__builtin_memcpy(key.dst, &ip->daddr, 16);
	key.sport = ports[0];
	key.dport = ports[1];
	key.proto = ip->nexthdr;
	v = bpf_map_lookup_elem(&flows6, &key);
	if (!v)
		return -1;
	if (flags & (TCP_SYN | TCP_FIN | TCP_RST))
		return punt(PUNT_FLAGS);
	plen = bpf_ntohs(ip->payload_len);
	if (plen < 8 || (void *)l4 + plen > end)
		return punt(PUNT_SHORT);
	if (v->action == FAST_TUN && plen + 80 > v->mtu)
		return punt(PUNT_MTU);
	w = (void *)&ip->saddr;
#pragma unroll
	for (i = 0; i < 16; i++)
		pseudo += w[i];
	pseudo += bpf_htons(plen) + bpf_htons(ip->nexthdr);
	if (*csum && *csum == fold(pseudo)) {
		if (fast_complete(ctx, (void *)l4 - data, plen, (void *)csum - data, ip->nexthdr == IPPROTO_UDP))
			return punt(PUNT_SHORT);
		count(PARTIAL_DONE);
		data = (void *)(long)ctx->data;
		end = (void *)(long)ctx->data_end;
		ip = data + sizeof(struct ethhdr);
		l4 = (void *)(ip + 1);
		if ((void *)(l4 + (tcp ? 20 : 8)) > end)
			return -1;
		ports = (void *)l4;
		csum = (void *)(l4 + (tcp ? 16 : 6));
	}
	__sync_fetch_and_add(&v->pkts, 1);
	__sync_fetch_and_add(&v->bytes, len + (v->action == FAST_TUN ? sizeof(struct ipv6hdr) : 0));
	v->last_seen = bpf_ktime_get_ns();
	if (v->action == FAST_NAT) {
		__u16 *old = v->to_server ? (void *)&ip->daddr : (void *)&ip->saddr;
		__u16 oldp = v->to_server ? ports[1] : ports[0];
		__u16 c = adjust2(adjust16(*csum, old, v->addr), oldp, v->port);

		*csum = (ip->nexthdr == IPPROTO_UDP && c == 0) ? 0xffff : c;
		if (v->to_server) {
			__builtin_memcpy(&ip->daddr, v->addr, 16);
			ports[1] = v->port;
		} else {
			__builtin_memcpy(&ip->saddr, v->addr, 16);
			ports[0] = v->port;
		}
	}
	if (v->action == FAST_TUN) {
		__u8 tc_hi = ((__u8 *)ip)[0] & 0x0f, tc_lo = ((__u8 *)ip)[1] & 0xf0;
		__u8 hops = ip->hop_limit, smac[6], dmac[6], src[16], dst[16];
		struct ipv6hdr *outer;
		__u8 *b;

		__builtin_memcpy(smac, v->smac, 6);
		__builtin_memcpy(dmac, v->dmac, 6);
		__builtin_memcpy(src, v->tun_src, 16);
		__builtin_memcpy(dst, v->addr, 16);
		if (bpf_xdp_adjust_head(ctx, -(int)sizeof(struct ipv6hdr)))
			return XDP_DROP;
		data = (void *)(long)ctx->data;
		end = (void *)(long)ctx->data_end;
		eth = data;
		outer = (void *)(eth + 1);
		if ((void *)(outer + 1) > end)
			return XDP_DROP;
		__builtin_memcpy(eth->h_dest, dmac, 6);
		__builtin_memcpy(eth->h_source, smac, 6);
		eth->h_proto = bpf_htons(ETH_P_IPV6);
		// Version 6, the inner traffic class, flow label 0.
		b = (void *)outer;
		b[0] = 0x60 | tc_hi;
		b[1] = tc_lo;
		b[2] = 0;
		b[3] = 0;
		outer->payload_len = bpf_htons(plen + 40);
		outer->nexthdr = 41;
		outer->hop_limit = hops;
		__builtin_memcpy(&outer->saddr, src, 16);
		__builtin_memcpy(&outer->daddr, dst, 16);
		if (v->ifindex)
			return redirect(v->ifindex);
		return XDP_TX;
	}
	eth = data;
	__builtin_memcpy(eth->h_dest, v->dmac, 6);
	__builtin_memcpy(eth->h_source, v->smac, 6);
	if (v->ifindex)
		return redirect(v->ifindex);
	return XDP_TX;
}
