// SPDX-License-Identifier: (MIT OR Apache-2.0)
//
// ferrovs steering program.
//
// Frames for a configured virtual service (protocol, VIP, port), and replies
// from NAT real servers (protocol, RIP, port as source), go to the AF_XDP
// socket bound to the interface and queue they arrived on; everything else
// (ARP, SSH, the director's own traffic) is XDP_PASS, so the host keeps
// working. Non-first IPv4 fragments to a VIP carry no ports; they go to the
// socket too so the dataplane counts them instead of the host swallowing them.
//
// Maps are filled by the daemon (dataplane/src/xsk/steer.rs):
//   services: key {vip, port, proto} in network byte order -> 1
//   vips:     key vip -> 1
//   reals:    key {rip, port, proto} of NAT real servers -> 1
//   links:    ifindex -> link number (the daemon's interface order)
//   xsks:     link * MAX_QUEUES + queue -> AF_XDP socket

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MAX_SERVICES 65536
#define MAX_QUEUES 64
#define MAX_LINKS 4

struct svc_key {
	__u32 addr;
	__u16 port;
	__u8 proto;
	__u8 pad;
};

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

// 0x1FFF covers the fragment offset; 0x2000 is "more fragments".
#define IP_OFFSET_MASK 0x1FFF

SEC("xdp")
int steer(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct svc_key key = {};
	__u32 ifindex = ctx->ingress_ifindex;
	__u32 *link, slot;
	__u16 *ports;
	int to_vip;

	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end)
		return XDP_PASS;
	to_vip = bpf_map_lookup_elem(&vips, &ip->daddr) != 0;
	if (ip->frag_off & bpf_htons(IP_OFFSET_MASK)) {
		if (to_vip)
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
	key.proto = ip->protocol;
	// Port 0 in a key stands for every port: fwmark services marked by
	// address only, and their NAT servers, which keep each packet's port.
	if (to_vip) {
		key.addr = ip->daddr;
		key.port = ports[1];
		if (bpf_map_lookup_elem(&services, &key))
			goto to_socket;
		key.port = 0;
		if (bpf_map_lookup_elem(&services, &key))
			goto to_socket;
	}
	key.addr = ip->saddr;
	key.port = ports[0];
	if (bpf_map_lookup_elem(&reals, &key))
		goto to_socket;
	key.port = 0;
	if (bpf_map_lookup_elem(&reals, &key))
		goto to_socket;
	return XDP_PASS;
to_socket:
	link = bpf_map_lookup_elem(&links, &ifindex);
	if (!link || ctx->rx_queue_index >= MAX_QUEUES)
		return XDP_PASS;
	slot = *link * MAX_QUEUES + ctx->rx_queue_index;
	return bpf_redirect_map(&xsks, slot, XDP_PASS);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
