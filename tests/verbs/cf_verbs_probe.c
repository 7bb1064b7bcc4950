/* SPDX-License-Identifier: MIT */
/*
 * cf_verbs_probe - what the RDMA devices here offer cfplex.
 *
 * For every device: atomic_cap, memory windows (type 2B), queue and region
 * limits, and whether cfserver would accept it. Exit 0 if at least one device
 * is usable, 1 if none is (e.g. no atomics), 77 if there is no device at all.
 */
#include <inttypes.h>
#include <stdio.h>

#include <infiniband/verbs.h>

static const char *atomic_str(enum ibv_atomic_cap a)
{
	switch (a) {
	case IBV_ATOMIC_NONE: return "NONE";
	case IBV_ATOMIC_HCA: return "HCA (atomic only against RDMA atomics of this HCA)";
	case IBV_ATOMIC_GLOB: return "GLOB";
	}
	return "?";
}

int main(void)
{
	struct ibv_device **devs;
	int n = 0, i, usable = 0;

	devs = ibv_get_device_list(&n);
	if (!devs || n == 0) {
		printf("SKIP: no RDMA device\n");
		return 77;
	}
	for (i = 0; i < n; i++) {
		struct ibv_context *ctx = ibv_open_device(devs[i]);
		struct ibv_device_attr a;
		struct ibv_port_attr pa;
		int mw2b;

		if (!ctx) {
			printf("%s: cannot open: %m\n", ibv_get_device_name(devs[i]));
			continue;
		}
		if (ibv_query_device(ctx, &a)) {
			printf("%s: query failed: %m\n", ibv_get_device_name(devs[i]));
			ibv_close_device(ctx);
			continue;
		}
		mw2b = !!(a.device_cap_flags & IBV_DEVICE_MEM_WINDOW_TYPE_2B);
		printf("%s: fw %s\n", ibv_get_device_name(devs[i]), a.fw_ver);
		printf("  atomic_cap      %s\n", atomic_str(a.atomic_cap));
		printf("  max_mw          %d (type 2B windows: %s)\n", a.max_mw, mw2b ? "yes" : "no");
		printf("  max_qp_wr       %d\n  max_sge         %d\n  max_cqe         %d\n", a.max_qp_wr, a.max_sge,
		       a.max_cqe);
		printf("  max_mr_size     %" PRIu64 "\n  max_qp_rd_atom  %d\n  max_qp_init_rd_atom %d\n",
		       (uint64_t)a.max_mr_size, a.max_qp_rd_atom, a.max_qp_init_rd_atom);
		if (ibv_query_port(ctx, 1, &pa) == 0)
			printf("  port 1          %s, link %s, mtu %d\n", ibv_port_state_str(pa.state),
			       pa.link_layer == IBV_LINK_LAYER_ETHERNET ? "Ethernet (RoCE)" : "InfiniBand",
			       128 << pa.active_mtu);
		if (a.atomic_cap == IBV_ATOMIC_NONE || a.max_qp_rd_atom < 1)
			printf("  => refused by cfserver: no RDMA atomics\n");
		else {
			printf("  => usable; grants via %s\n",
			       mw2b && a.max_mw > 0 ? "type-2 memory windows" : "per-grant memory regions");
			usable++;
		}
		ibv_close_device(ctx);
	}
	ibv_free_device_list(devs);
	return usable ? 0 : 1;
}
