// SPDX-License-Identifier: (MIT OR Apache-2.0)
//
// ferrovs: everything the XDP programs and the daemon share, defined once.
//
// The programs include this file; build.rs runs bindgen over it for the
// BPF target and the daemon uses the generated Rust types
// (dataplane/src/xsk/layout.rs), with every field's offset and every
// struct's size asserted at compile time against what clang laid out here.
// A field moved here moves on both sides; a field moved on one side alone
// does not compile.
//
// Owns: map keys and values, map sizes, action and punt codes, the bench
// program's configuration. Must not hold code: helpers live in the .bpf
// files.
//
// All addresses and ports are in network order unless a comment says
// otherwise.

#ifndef FERROVS_LAYOUT_H
#define FERROVS_LAYOUT_H

#include <linux/types.h>

// The daemon copies these structs byte for byte: a hole clang would pad is
// an error, so every bit pattern of every struct is a valid value.
#pragma clang diagnostic push
#pragma clang diagnostic error "-Wpadded"

// ---- steering (steer.bpf.c) ----

// Entries of each services, VIP, real server and local-address map.
#define MAX_SERVICES 65536
// Queues per link in the XSKMAP.
#define MAX_QUEUES 64
// Links (interfaces) the program serves.
#define MAX_LINKS 4

// Key of `services` and `reals`: {vip or rip, port, proto}.
struct svc_key {
	__u32 addr;
	__u16 port;
	__u8 proto;
	__u8 pad;
};

// Key of `services6` and `reals6`.
struct svc6_key {
	__u8 addr[16];
	__u16 port;
	__u8 proto;
	__u8 pad;
};

// Key of `vips6`, `rips6` and `locals6`.
struct addr6 {
	__u8 addr[16];
};

// ---- the fast path (fast.bpf.h) ----

// flow_val.action.
#define FAST_DR 1
#define FAST_NAT 2
#define FAST_TUN 3
// Entries of `flows` (and `flows6`) at most; the daemon sizes them lower.
#define MAX_FLOWS (1 << 22)

// Key of `flows`: the frame's own tuple.
struct flow_key {
	__u32 src;
	__u32 dst;
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 pad[3];
};

struct flow_val {
	__u8 action;
	// 1: rewrite the destination (client -> server), 0: the source (a NAT
	// reply back to the client).
	__u8 to_server;
	__u8 smac[6];
	__u8 dmac[6];
	// NAT: the new port.
	__u16 port;
	// NAT: the new address; TUN: the outer destination.
	__u32 addr;
	// TUN: the outer source.
	__u32 tun_src;
	// TUN: the link's MTU, host order.
	__u16 mtu;
	__u16 pad;
	// The egress interface when it is not the ingress one (two-armed
	// NAT); 0: back out of the ingress (XDP_TX). Host order.
	__u32 ifindex;
	// Written by the program, read by the daemon (host order).
	__u64 pkts;
	__u64 bytes;
	// bpf_ktime_get_ns() of the last packet.
	__u64 last_seen;
};

// Key of `flows6`.
struct flow6_key {
	__u8 src[16];
	__u8 dst[16];
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 pad[3];
};

// As flow_val, with 16-byte addresses.
struct flow6_val {
	__u8 action;
	__u8 to_server;
	__u8 smac[6];
	__u8 dmac[6];
	__u16 port;
	__u8 addr[16];
	__u8 tun_src[16];
	__u16 mtu;
	__u16 pad;
	__u32 ifindex;
	__u64 pkts;
	__u64 bytes;
	__u64 last_seen;
};

// Why a frame of a flow in the map went to the socket anyway (`punts`,
// one per-CPU counter each); the last one counts checksums completed in
// the program, which is no punt.
#define PUNT_FLAGS 0
#define PUNT_FRAGMENT 1
#define PUNT_OPTIONS 2
#define PUNT_MTU 3
#define PUNT_SHORT 4
#define PARTIAL_DONE 5
#define PUNT_N 6

struct punt_counts {
	__u64 n[PUNT_N];
};

// ---- the benchmark (bench.bpf.c; not in the director's program) ----

struct gen_cfg {
	__u32 ifindex;
	__u32 nflows;
	// Host order.
	__u16 base_port;
	__u16 stamp;
	__u32 burst;
	__u64 cost_ps;
	// TCP frames: the first `syn_first` frames sent are SYNs, the rest
	// ACKs (an established-flow mix after one SYN per flow); ~0: all SYNs.
	__u64 syn_first;
	// Bytes of `gen_head` written over the start of every frame.
	__u32 head_len;
	// Flows go in the order seq * step mod nflows: with step coprime to
	// nflows a permutation, so every flow comes once per cycle (1: in
	// order; a large step: RFC 4814's pseudorandom ports).
	__u32 step;
	// Connections (TCP): 0, frames as `syn_first` says; else each
	// connection is this many frames of one flow, in the order SYN, ACK,
	// FIN|ACK, ACK (2: opened; 4: opened and closed), a new flow each.
	__u32 conn_pkts;
	__u32 pad;
	// Frame `first` is the first one this run sends (a run goes on from
	// where the last left off, so its connections are new).
	__u64 first;
};

// Bytes of a frame's start the generator rewrites on every send.
#define HEAD_MAX 128
// The sink answers a client's ISN with this XOR of it as the server's.
#define SERVER_ISN_XOR 0x5a5a5a5a
// MAC slots the sink counts apart.
#define SINK_SLOTS 16
// `sink_stamped` bits: read stamps; answer as the real server.
#define SINK_STAMPED 1
#define SINK_REPLY 2
// Latency histogram: LAT_BUCKETS buckets of LAT_NS each; the last one
// also holds everything longer.
#define LAT_BUCKETS 8192
#define LAT_NS 250

#pragma clang diagnostic pop

#endif
