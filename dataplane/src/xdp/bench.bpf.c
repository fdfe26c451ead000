// SPDX-License-Identifier: (MIT OR Apache-2.0)
//
// Benchmark programs (crate `bench` drives them through dataplane::xsk::bench):
//
//   gen   run by BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES: stamps each
//         frame with the next client port of `nflows` and redirects it out of
//         `ifindex` — a generator that outruns an AF_XDP forwarder, as
//         xdp-trafficgen does. Paced (`cost_ps` > 0), a token bucket in the
//         program lets a frame go only when it has earned the credit, and the
//         rest of the run's iterations are dropped unsent: one long run keeps
//         a steady rate, with no gap per call. With `stamp`, the send time
//         (bpf_ktime_get_ns) goes into the first 8 payload bytes.
//   sink  attached to the interface the forwarded frames come back on: counts
//         IPv4 and IPv6 frames and bytes per destination MAC slot (a real
//         server), or as errors those to an unknown MAC, with a wrong IPv4
//         header checksum or with a destination address other than the
//         slot's; records the latency of stamped frames in a
//         histogram; drops them all.
//   swap  the in-kernel comparison: swaps the MACs and sends the frame back
//         out (XDP_TX), as a forwarder that never leaves the driver.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "layout.h"

// The frame's first bytes as sent. Live frames come from a page pool that
// gets back what the far side returns — a frame a forwarder rewrote in
// place (an XDP_TX MAC swap) would otherwise go out again rewritten.
struct head {
	__u8 bytes[HEAD_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct head);
} gen_head SEC(".maps");

// Per CPU: the token bucket and what was sent.
struct gen_state {
	__u64 seq;
	__u64 last_ns;
	__u64 credit_ps;
	__u64 sent;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gen_cfg);
} gen_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gen_state);
} gen_state SEC(".maps");

// Flow `f` of the generator: client port base_port + f % 65536 (set by
// the caller), client address the frame's + f / 65536 (low 16 bits; the
// header checksum is patched as RFC 1624 says), so up to 4 G distinct
// tuples. The frame is fresh from `gen_head` each time, so the patch starts
// from its values.
static __always_inline void set_saddr(struct iphdr *ip, __u32 f)
{
	__u16 *lo = (__u16 *)&ip->saddr + 1;
	__u16 old = *lo;
	__u16 new = bpf_htons(bpf_ntohs(old) + (__u16)(f >> 16));
	__u32 sum = (__u16)~ip->check + (__u16)~old + new;

	if (new == old)
		return;
	*lo = new;
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	ip->check = ~(__u16)sum;
}

// The server's initial sequence number for a client's is the client's
// XOR SERVER_ISN_XOR (layout.h): the sink answers a SYN with it, and the
// generator acknowledges it, so a stateful path (conntrack) sees a
// handshake whose numbers agree, with no state kept.

// Connection traffic: frame `phase` of flow `flow`'s connection: SYN,
// ACK, FIN|ACK, ACK, with the sequence and acknowledgement numbers of a
// real handshake and close (the client's ISN from the flow).
static __always_inline void set_conn(struct tcphdr *tcp, __u32 flow, __u32 phase)
{
	__u32 isn = flow * 2654435761u;
	__u32 sisn = isn ^ SERVER_ISN_XOR;
	__u32 step = phase == 0 ? 0 : phase == 3 ? 2 : 1;

	tcp->seq = bpf_htonl(isn + step);
	tcp->ack_seq = phase == 0 ? 0 : bpf_htonl(sisn + step);
	((__u8 *)tcp)[13] = phase == 0 ? 0x02 : phase == 2 ? 0x11 : 0x10;
}

// One step of RFC 1624's HC' = ~(~HC + ~m + m') over a running ~HC.
static __always_inline __u32 csum_word(__u32 sum, __u16 old, __u16 new)
{
	return sum + (__u16)~old + new;
}

// Keep the TCP checksum right after the generator's changes: RFC 1624
// over every word it may have changed (the client address's low word,
// the source port, seq, ack, offset and flags), the old ones read from
// the template. The template's checksum is right (the caller builds it so).
static __always_inline void tcp_csum_follow(void *data, void *end, struct head *head, __u32 at, __u32 check)
{
	// The client address's low word: 6 bytes before IPv4's TCP header
	// (saddr ends 4 bytes before daddr), 18 before IPv6's.
	__u32 sa = at == 34 ? 28 : 36;
	__u32 offs[7] = { sa, at, at + 4, at + 6, at + 8, at + 10, at + 12 };
	__u16 *csum = data + check;
	__u32 sum;
	int i;

	if ((void *)(csum + 1) > end || check > HEAD_MAX - 2)
		return;
	sum = (__u16)~*csum;
#pragma unroll
	for (i = 0; i < 7; i++) {
		__u32 off = offs[i];
		__u16 *now = data + off;

		if (off > HEAD_MAX - 2 || (void *)(now + 1) > end)
			return;
		sum = csum_word(sum, *(__u16 *)&head->bytes[off], *now);
	}
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	*csum = ~(__u16)sum;
}

SEC("xdp")
int gen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	void *l4;
	__u8 proto;
	__u32 flow, phase = 0;
	__u64 n;
	__u32 zero = 0;
	struct gen_cfg *cfg = bpf_map_lookup_elem(&gen_cfg, &zero);
	struct gen_state *st = bpf_map_lookup_elem(&gen_state, &zero);
	struct head *head = bpf_map_lookup_elem(&gen_head, &zero);
	__u32 len;
	__u64 now = 0;

	if (!cfg || !st || !head || cfg->nflows == 0)
		return XDP_ABORTED;
	if (cfg->cost_ps || cfg->stamp)
		now = bpf_ktime_get_ns();
	if (cfg->cost_ps) {
		__u64 cap = cfg->cost_ps * cfg->burst;

		if (st->last_ns == 0)
			st->credit_ps = cfg->cost_ps;
		else
			st->credit_ps += (now - st->last_ns) * 1000;
		st->last_ns = now;
		if (st->credit_ps > cap)
			st->credit_ps = cap;
		if (st->credit_ps < cfg->cost_ps)
			return XDP_DROP;
		st->credit_ps -= cfg->cost_ps;
	}
	len = cfg->head_len;
	if (len > HEAD_MAX || len < 1 || bpf_xdp_store_bytes(ctx, 0, head->bytes, len))
		return XDP_ABORTED;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	eth = data;
	if ((void *)(eth + 1) > end)
		return XDP_ABORTED;
	n = st->seq + cfg->first;
	if (cfg->conn_pkts) {
		phase = (__u32)(n % cfg->conn_pkts);
		n /= cfg->conn_pkts;
	}
	flow = (__u32)((n % cfg->nflows) * cfg->step % cfg->nflows);
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > end)
			return XDP_ABORTED;
		// Flows past 65 536 take the next client addresses (low 16 bits;
		// IPv6 has no header checksum).
		ip6->saddr.in6_u.u6_addr16[7] =
			bpf_htons(bpf_ntohs(ip6->saddr.in6_u.u6_addr16[7]) + (__u16)(flow >> 16));
		l4 = ip6 + 1;
		proto = ip6->nexthdr;
	} else {
		ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > end || ip->ihl != 5)
			return XDP_ABORTED;
		set_saddr(ip, flow);
		l4 = ip + 1;
		proto = ip->protocol;
	}
	if (proto == IPPROTO_TCP) {
		struct tcphdr *tcp = l4;

		if ((void *)(tcp + 1) > end)
			return XDP_ABORTED;
		if (cfg->conn_pkts) {
			set_conn(tcp, flow, phase);
		} else {
			// The stamp rides in seq and ack: a 64-byte TCP frame has no
			// payload room for it, and forwarders leave both alone.
			if (cfg->stamp)
				__builtin_memcpy(&tcp->seq, &now, sizeof(now));
			tcp->syn = st->sent < cfg->syn_first;
			tcp->ack = !tcp->syn;
		}
		tcp->source = bpf_htons(cfg->base_port + (__u16)flow);
		tcp_csum_follow(data, end, head, (void *)tcp - data, (void *)&tcp->check - data);
	} else {
		struct udphdr *udp = l4;
		__u64 *stamp = (void *)(udp + 1);

		if ((void *)(stamp + 1) > end)
			return XDP_ABORTED;
		if (cfg->stamp)
			__builtin_memcpy(stamp, &now, sizeof(now));
		udp->source = bpf_htons(cfg->base_port + (__u16)flow);
	}
	st->seq += 1;
	st->sent += 1;
	return bpf_redirect(cfg->ifindex, 0);
}

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LAT_BUCKETS);
	__type(key, __u32);
	__type(value, __u64);
} sink_lat SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} sink_stamped SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SINK_SLOTS);
	__type(key, __u64);
	__type(value, __u32);
} sink_macs SEC(".maps");

// The IPv4 destination a frame to each MAC slot must carry (0: any): the
// VIP after DR or a MAC swap, the slot's real server after NAT or (outer
// header) TUN.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SINK_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} sink_dst SEC(".maps");

// Per CPU: [slot] = frames, [SINK_SLOTS + slot] = bytes, [2*SINK_SLOTS] =
// frames to no known MAC, [2*SINK_SLOTS+1] = bad IPv4 checksums,
// [2*SINK_SLOTS+2] = a destination address other than the slot's,
// [2*SINK_SLOTS+3] = answers sent back as the real server.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2 * SINK_SLOTS + 4);
	__type(key, __u32);
	__type(value, __u64);
} sink_count SEC(".maps");

static __always_inline void bump(__u32 k, __u64 by)
{
	__u64 *v = bpf_map_lookup_elem(&sink_count, &k);

	if (v)
		*v += by;
}

// The stamp is the first 8 bytes of the UDP payload (TCP: seq and ack) of
// the L4 header at `l4`.
static __always_inline void record_latency(void *l4, __u8 proto, void *end)
{
	__u32 zero = 0;
	__u32 *on = bpf_map_lookup_elem(&sink_stamped, &zero);
	__u64 sent, ns;
	__u64 *stamp;
	__u32 k;

	if (!on || !(*on & SINK_STAMPED))
		return;
	if (proto == IPPROTO_UDP)
		stamp = l4 + sizeof(struct udphdr);
	else if (proto == IPPROTO_TCP)
		stamp = l4 + 4;
	else
		return;
	if ((void *)(stamp + 1) > end)
		return;
	__builtin_memcpy(&sent, stamp, sizeof(sent));
	ns = bpf_ktime_get_ns() - sent;
	k = ns / LAT_NS;
	if (k >= LAT_BUCKETS)
		k = LAT_BUCKETS - 1;
	__u64 *v = bpf_map_lookup_elem(&sink_lat, &k);
	if (v)
		*v += 1;
}

// As the real server (slots 0 and 1) when asked: a SYN gets a SYN-ACK,
// a FIN a FIN-ACK, with the numbers a TCP stack would give them, sent
// back through the director (XDP_TX) with the addresses, ports and MACs
// swapped (a swap changes no checksum).
static __always_inline int answer(struct ethhdr *eth, struct iphdr *ip, void *end)
{
	__u32 zero = 0;
	__u32 *mode = bpf_map_lookup_elem(&sink_stamped, &zero);
	struct tcphdr *tcp = (void *)(ip + 1);
	unsigned char mac[ETH_ALEN];
	__u16 old[5];
	__u8 *flags;
	__u32 a, seq, sum;
	__u16 p;
	int i;

	if (!mode || !(*mode & SINK_REPLY) || ip->protocol != IPPROTO_TCP)
		return XDP_DROP;
	if ((void *)(tcp + 1) > end)
		return XDP_DROP;
	flags = (__u8 *)tcp + 13;
	__builtin_memcpy(old, &tcp->seq, sizeof(old));
	seq = bpf_ntohl(tcp->seq);
	if (*flags == 0x02) {
		// SYN-ACK: our ISN from the client's (see SERVER_ISN_XOR).
		*flags = 0x12;
		tcp->seq = bpf_htonl(seq ^ SERVER_ISN_XOR);
	} else if (*flags & 0x01) {
		*flags = 0x11;
		tcp->seq = tcp->ack_seq;
	} else {
		return XDP_DROP;
	}
	tcp->ack_seq = bpf_htonl(seq + 1);
	// seq, ack, offset and flags changed (5 words); the swaps below
	// change no sum.
	sum = (__u16)~tcp->check;
#pragma unroll
	for (i = 0; i < 5; i++)
		sum = csum_word(sum, old[i], ((__u16 *)&tcp->seq)[i]);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	tcp->check = ~(__u16)sum;
	__builtin_memcpy(mac, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, mac, ETH_ALEN);
	a = ip->saddr;
	ip->saddr = ip->daddr;
	ip->daddr = a;
	p = tcp->source;
	tcp->source = tcp->dest;
	tcp->dest = p;
	bump(2 * SINK_SLOTS + 3, 1);
	return XDP_TX;
}

SEC("xdp")
int sink(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct ipv6hdr *ip6 = (void *)(eth + 1);
	__u64 mac = 0;
	__u32 *slot, *want, k;
	__u32 sum = 0;
	__u16 *w;
	int i;

	if ((void *)(eth + 1) > end)
		return XDP_PASS;
	// Multicast (IPv6 neighbour discovery, MLD) is the kernel's, not ours.
	if (eth->h_dest[0] & 1)
		return XDP_PASS;
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		// UDP or TCP, or TUN's IPv6-in-IPv6 (next header 41).
		if ((void *)(ip6 + 1) > end ||
		    (ip6->nexthdr != IPPROTO_UDP && ip6->nexthdr != IPPROTO_TCP &&
		     ip6->nexthdr != IPPROTO_IPV6))
			return XDP_PASS;
	} else if (eth->h_proto != bpf_htons(ETH_P_IP) || (void *)(ip + 1) > end) {
		return XDP_PASS;
	}
	__builtin_memcpy(&mac, eth->h_dest, ETH_ALEN);
	slot = bpf_map_lookup_elem(&sink_macs, &mac);
	if (!slot) {
		bump(2 * SINK_SLOTS, 1);
		return XDP_DROP;
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		bump(*slot & (SINK_SLOTS - 1), 1);
		bump(SINK_SLOTS + (*slot & (SINK_SLOTS - 1)), (__u64)(end - data));
		if (ip6->nexthdr == IPPROTO_IPV6)
			ip6 = ip6 + 1;
		if ((void *)(ip6 + 1) > end)
			return XDP_DROP;
		record_latency(ip6 + 1, ip6->nexthdr, end);
		return XDP_DROP;
	}
	// IPv6 has no header checksum; IPv4's must come out right, or the
	// frame is an error, not a delivery.
	w = (void *)ip;
#pragma unroll
	for (i = 0; i < 10; i++)
		sum += w[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	if ((__u16)~sum != 0) {
		bump(2 * SINK_SLOTS + 1, 1);
		return XDP_DROP;
	}
	k = *slot & (SINK_SLOTS - 1);
	want = bpf_map_lookup_elem(&sink_dst, &k);
	if (want && *want && ip->daddr != *want) {
		bump(2 * SINK_SLOTS + 2, 1);
		return XDP_DROP;
	}
	bump(*slot & (SINK_SLOTS - 1), 1);
	bump(SINK_SLOTS + (*slot & (SINK_SLOTS - 1)), (__u64)(end - data));
	// Under TUN's outer header, the inner one.
	if (ip->protocol == IPPROTO_IPIP)
		ip = ip + 1;
	if ((void *)(ip + 1) > end || ip->ihl != 5)
		return XDP_DROP;
	record_latency(ip + 1, ip->protocol, end);
	if (k < 2)
		return answer(eth, ip, end);
	return XDP_DROP;
}

SEC("xdp")
int swap(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	unsigned char tmp[ETH_ALEN];

	if ((void *)(eth + 1) > end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP) && eth->h_proto != bpf_htons(ETH_P_IPV6))
		return XDP_PASS;
	__builtin_memcpy(tmp, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, tmp, ETH_ALEN);
	return XDP_TX;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
