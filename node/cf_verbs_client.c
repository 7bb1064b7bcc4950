/* SPDX-License-Identifier: MIT */
/* placeholder until the verbs backend lands: refuses with -ENOSYS */
#include <errno.h>
#include "cf_transport.h"
static int v_connect(const char *addr, int timeout_ms, struct cf_conn **out)
{
	return -ENOSYS;
}
const struct cf_client_ops cf_verbs_client = {.name = "verbs", .connect = v_connect};
