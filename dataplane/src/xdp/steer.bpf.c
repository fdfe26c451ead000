// SPDX-License-Identifier: (MIT OR Apache-2.0)
//
// ferrovs steering program.
//
// Frames for a configured virtual service (protocol, VIP, port), and replies
// from NAT real servers (protocol, RIP, port as source), go to the AF_XDP
// socket bound to the interface and queue they arrived on; everything else
// (ARP, SSH, the director's own traffic) is XDP_PASS, so the host keeps
// working. Later IPv4 fragments carry no ports: those to a VIP, and those
// from a NAT real server's address, go to the socket, where the worker that
// saw the first fragment's ports decided for the whole datagram. ICMP errors
// (unreachable, time exceeded, parameter problem) go there when the packet
// they quote belongs to a service: one the director sent from a VIP:port
// (they come from the client's side, to the VIP), or one it sent to a NAT
// real server (they come from that side); the dataplane finds the
// connection. Other ICMP (echo to the VIP, say) stays with the host.
//
// Maps are filled by the daemon (dataplane/src/xsk/steer.rs):
//   services: key {vip, port, proto} in network byte order -> 1
//   vips:     key vip -> 1
//   reals:    key {rip, port, proto} of NAT real servers -> 1
//   rips:     rip of NAT real servers -> 1
//   locals:   the director's own addresses -> 1: what a NAT real server
//             sends to one of them (health-check replies, SSH) is the
//             host's, not a reply to a client
//   links:    ifindex -> link number (the daemon's interface order)
//   xsks:     link * MAX_QUEUES + queue -> AF_XDP socket
//   services6, vips6, reals6, rips6, locals6: the same for IPv6, keys
//             with 16-byte addresses
//   flows, fast_on: the fast path (fast.bpf.h), looked up first
//
// IPv6: the extension headers before TCP/UDP (hop-by-hop, routing,
// fragment, destination options) are walked, at most MAX_EXT6 of them; a
// later fragment goes as an IPv4 one does; ICMPv6 errors (unreachable,
// packet too big, time exceeded, parameter problem) as ICMP ones do, when
// the packet they quote (TCP or UDP right after its header) is a service's.
// Other ICMPv6 (neighbour discovery, MLD, echo) stays with the host.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "layout.h"

// 0x1FFF covers the fragment offset; 0x2000 is "more fragments".
#define IP_OFFSET_MASK 0x1FFF

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_SERVICES);
	__type(key, struct svc_key);
	__type(value, __u32);
} services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_SERVICES);
	__type(key, __u32);
	__type(value, __u32);
} vips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_SERVICES);
	__type(key, struct svc_key);
	__type(value, __u32);
} reals SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_SERVICES);
	__type(key, __u32);
	__type(value, __u32);
} rips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_SERVICES);
	__type(key, __u32);
	__type(value, __u32);
} locals SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_SERVICES);
	__type(key, struct svc6_key);
	__type(value, __u32);
} services6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_SERVICES);
	__type(key, struct addr6);
	__type(value, __u32);
} vips6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_SERVICES);
	__type(key, struct svc6_key);
	__type(value, __u32);
} reals6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_SERVICES);
	__type(key, struct addr6);
	__type(value, __u32);
} rips6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_SERVICES);
	__type(key, struct addr6);
	__type(value, __u32);
} locals6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_LINKS);
	__type(key, __u32);
	__type(value, __u32);
} links SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, MAX_LINKS * MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

#define ICMP_DEST_UNREACH 3
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETERPROB 12

// Whether {addr, port, proto} or {addr, 0, proto} is in `map`.
static __always_inline int has_port(void *map, __u32 addr, __u16 port, __u8 proto)
{
	struct svc_key key = { .addr = addr, .port = port, .proto = proto };

	if (bpf_map_lookup_elem(map, &key))
		return 1;
	key.port = 0;
	return bpf_map_lookup_elem(map, &key) != 0;
}

// Whether the ICMP error `ip` (outer header, no options checked) quotes a
// packet of a service: see the top of the file.
static __always_inline int icmp_for_service(struct iphdr *ip, void *end, int to_vip)
{
	__u8 *icmp = (void *)ip + ip->ihl * 4;
	struct iphdr *in;
	__u16 *ports;

	if ((void *)(icmp + 8) > end)
		return 0;
	if (icmp[0] != ICMP_DEST_UNREACH && icmp[0] != ICMP_TIME_EXCEEDED &&
	    icmp[0] != ICMP_PARAMETERPROB)
		return 0;
	in = (void *)(icmp + 8);
	if ((void *)(in + 1) > end || in->ihl < 5)
		return 0;
	if (in->protocol != IPPROTO_TCP && in->protocol != IPPROTO_UDP)
		return 0;
	ports = (void *)in + in->ihl * 4;
	if ((void *)(ports + 2) > end)
		return 0;
	if (to_vip)
		return has_port(&services, in->saddr, ports[0], in->protocol);
	// A packet the host itself sent (a health check) is the host's error.
	if (bpf_map_lookup_elem(&locals, &in->saddr))
		return 0;
	return has_port(&reals, in->daddr, ports[1], in->protocol);
}

// Whether `ip` is for one of the director's own addresses (asked only of
// what came from a NAT real server, so other traffic pays no lookup).
static __always_inline int to_host(struct iphdr *ip)
{
	return bpf_map_lookup_elem(&locals, &ip->daddr) != 0;
}

#include "fast.bpf.h"

#define MAX_EXT6 4
#define NEXTHDR_HOP 0
#define NEXTHDR_ROUTING 43
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_DEST 60

// Whether {addr, port, proto} or {addr, 0, proto} is in the IPv6 `map`.
static __always_inline int has_port6(void *map, const struct in6_addr *addr, __u16 port, __u8 proto)
{
	struct svc6_key key = { .port = port, .proto = proto };

	__builtin_memcpy(key.addr, addr, 16);
	if (bpf_map_lookup_elem(map, &key))
		return 1;
	key.port = 0;
	return bpf_map_lookup_elem(map, &key) != 0;
}

// Whether the ICMPv6 error at `icmp` quotes a packet of a service: see the
// top of the file.
static __always_inline int icmp6_for_service(__u8 *icmp, void *end, int to_vip)
{
	struct ipv6hdr *in;
	__u16 *ports;

	if ((void *)(icmp + 8) > end || icmp[0] < 1 || icmp[0] > 4)
		return 0;
	in = (void *)(icmp + 8);
	if ((void *)(in + 1) > end)
		return 0;
	if (in->nexthdr != IPPROTO_TCP && in->nexthdr != IPPROTO_UDP)
		return 0;
	ports = (void *)(in + 1);
	if ((void *)(ports + 2) > end)
		return 0;
	if (to_vip)
		return has_port6(&services6, &in->saddr, ports[0], in->nexthdr);
	if (bpf_map_lookup_elem(&locals6, &in->saddr))
		return 0;
	return has_port6(&reals6, &in->daddr, ports[1], in->nexthdr);
}

// 1: an IPv6 frame for the sockets, 0: for the host.
static __always_inline int steer6(struct ipv6hdr *ip, void *end)
{
	__u8 *at = (void *)(ip + 1);
	__u8 next = ip->nexthdr;
	__u16 *ports;
	int to_vip, later = 0, i;

	to_vip = bpf_map_lookup_elem(&vips6, &ip->daddr) != 0;
#pragma unroll
	for (i = 0; i < MAX_EXT6; i++) {
		if (next != NEXTHDR_HOP && next != NEXTHDR_ROUTING && next != NEXTHDR_FRAGMENT &&
		    next != NEXTHDR_DEST)
			break;
		if ((void *)(at + 8) > end)
			return to_vip;
		if (next == NEXTHDR_FRAGMENT) {
			// Offset in the high 13 bits of bytes 2-3.
			later = (at[2] << 5 | at[3] >> 3) != 0;
			next = at[0];
			at += 8;
		} else {
			next = at[0];
			at += 8 + at[1] * 8;
		}
	}
	if (later)
		return to_vip ||
		       (bpf_map_lookup_elem(&rips6, &ip->saddr) && !bpf_map_lookup_elem(&locals6, &ip->daddr));
	if (next == IPPROTO_ICMPV6)
		return icmp6_for_service(at, end, to_vip);
	if (next != IPPROTO_TCP && next != IPPROTO_UDP)
		return 0;
	ports = (void *)at;
	if ((void *)(ports + 2) > end)
		return to_vip;
	if (to_vip && has_port6(&services6, &ip->daddr, ports[1], next))
		return 1;
	return has_port6(&reals6, &ip->saddr, ports[0], next) && !bpf_map_lookup_elem(&locals6, &ip->daddr);
}

SEC("xdp")
int steer(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	__u32 ifindex = ctx->ingress_ifindex;
	__u32 *link, slot;
	__u16 *ports;
	int to_vip;

	if ((void *)(eth + 1) > end)
		return XDP_PASS;
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		int fast = fast_path6(ctx);

		if (fast >= 0)
			return fast;
		// The call may have moved the frame: take the pointers again.
		data = (void *)(long)ctx->data;
		end = (void *)(long)ctx->data_end;
		ip6 = data + sizeof(struct ethhdr);
		if ((void *)(ip6 + 1) > end || !steer6(ip6, end))
			return XDP_PASS;
		goto to_socket;
	}
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	{
		int fast = fast_path(ctx);

		if (fast >= 0)
			return fast;
	}
	// As after fast_path6.
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	ip = data + sizeof(struct ethhdr);
	if ((void *)(ip + 1) > end)
		return XDP_PASS;
	to_vip = bpf_map_lookup_elem(&vips, &ip->daddr) != 0;
	if (ip->frag_off & bpf_htons(IP_OFFSET_MASK)) {
		if (to_vip || (bpf_map_lookup_elem(&rips, &ip->saddr) && !to_host(ip)))
			goto to_socket;
		return XDP_PASS;
	}
	if (ip->protocol == IPPROTO_ICMP && ip->ihl >= 5) {
		if (icmp_for_service(ip, end, to_vip))
			goto to_socket;
		return XDP_PASS;
	}
	if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	if (ip->ihl < 5) {
		if (to_vip)
			goto to_socket;
		return XDP_PASS;
	}
	ports = (void *)ip + ip->ihl * 4;
	if ((void *)(ports + 2) > end) {
		if (to_vip)
			goto to_socket;
		return XDP_PASS;
	}
	// Port 0 in a key stands for every port: fwmark services marked by
	// address only, and their NAT servers, which keep each packet's port.
	if (to_vip && has_port(&services, ip->daddr, ports[1], ip->protocol))
		goto to_socket;
	if (has_port(&reals, ip->saddr, ports[0], ip->protocol) && !to_host(ip))
		goto to_socket;
	return XDP_PASS;
to_socket:
	link = bpf_map_lookup_elem(&links, &ifindex);
	if (!link || ctx->rx_queue_index >= MAX_QUEUES)
		return XDP_PASS;
	slot = *link * MAX_QUEUES + ctx->rx_queue_index;
	// No socket on this queue (the daemon is restarting): dropped, so the
	// client retransmits; passed, the host would reset its connection.
	return bpf_redirect_map(&xsks, slot, XDP_DROP);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
