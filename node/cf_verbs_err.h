/* SPDX-License-Identifier: MIT */
/*
 * cf_verbs_err.h - rdma-core's error conventions as 0/-errno, one copy for
 * both verbs backends (node/cf_verbs_client*.c, cfserver/cf_verbs_server.c),
 * so that a completion status means the same on both sides. Not installed;
 * nothing outside the two backends includes ibverbs.
 */
#ifndef CF_VERBS_ERR_H
#define CF_VERBS_ERR_H

#include <errno.h>

#include <infiniband/verbs.h>

/* errno after a failed rdma-core call that sets it (-EIO when it did not). */
static inline int cf_verbs_neg_errno(void)
{
	return errno ? -errno : -EIO;
}

/* ibv_post_send/recv return a positive errno (or -1 with errno set on some providers). */
static inline int cf_verbs_post_ret(int r)
{
	return r > 0 ? -r : (r < 0 ? cf_verbs_neg_errno() : 0);
}

/* A work completion's status as 0/-errno. */
static inline int cf_verbs_wc_errno(enum ibv_wc_status s)
{
	switch (s) {
	case IBV_WC_SUCCESS: return 0;
	case IBV_WC_REM_ACCESS_ERR:
	case IBV_WC_LOC_PROT_ERR:
	case IBV_WC_MW_BIND_ERR: return -EACCES;
	case IBV_WC_REM_INV_REQ_ERR: return -EINVAL;
	case IBV_WC_LOC_LEN_ERR: return -EMSGSIZE;
	case IBV_WC_WR_FLUSH_ERR: return -ECONNRESET;
	case IBV_WC_RETRY_EXC_ERR:
	case IBV_WC_RNR_RETRY_EXC_ERR: return -ETIMEDOUT;
	default: return -EIO;
	}
}

#endif
