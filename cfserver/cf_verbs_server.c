/* SPDX-License-Identifier: MIT */
/* placeholder until the verbs backend lands: refuses with -ENOSYS */
#include <errno.h>
#include "cf_transport.h"
static int v_listen(struct ev_loop *loop, const char *addr, void *image, uint64_t size,
		    const struct cf_server_cbs *cbs, struct cf_tserver **out)
{
	return -ENOSYS;
}
const struct cf_server_ops cf_verbs_server = {.name = "verbs", .listen = v_listen};
