/* SPDX-License-Identifier: MIT */
#include "cf_addr.h"

#include <errno.h>
#include <string.h>

int cf_addr_split(const char *s, char *host, size_t hostcap, uint16_t *port)
{
	const char *h, *colon, *p;
	size_t hlen;
	unsigned long v = 0;

	if (!s || !host || !port || hostcap == 0)
		return -EINVAL;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':')
			return -EINVAL;
		h = s + 1;
		hlen = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || memchr(s, ':', (size_t)(colon - s)))
			return -EINVAL; /* bare IPv6 needs brackets */
		h = s;
		hlen = (size_t)(colon - s);
	}
	if (hlen == 0)
		return -EINVAL;
	if (hlen >= hostcap)
		return -ENAMETOOLONG;
	p = colon + 1;
	if (*p == '\0' || strlen(p) > 5)
		return -EINVAL;
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long)(*p - '0');
	}
	if (v > 65535)
		return -EINVAL;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*port = (uint16_t)v;
	return 0;
}
