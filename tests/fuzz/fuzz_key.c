/* SPDX-License-Identifier: MIT */
/*
 * fuzz_key - the cluster key file parser (cf_key_parse): the contents of
 * --cluster-key FILE. Accepted means: 64 hex digits with only whitespace
 * around them, decoding to the key; or exactly 32 bytes taken as they are,
 * unless all 32 are hex digits (a 128-bit key written as text: refused).
 */
#include <errno.h>
#include <string.h>

#include "cf_auth.h"
#include "fuzz.h"

static int hexv(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int is_ws(uint8_t c)
{
	return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t key[CF_KEY_LEN];
	size_t b = 0, e = size;
	int r, hex_ok = 0;

	r = cf_key_parse(data, size, key);
	while (b < e && is_ws(data[b]))
		b++;
	while (e > b && is_ws(data[e - 1]))
		e--;
	if (e - b == 2 * CF_KEY_LEN) {
		hex_ok = 1;
		for (size_t i = b; i < e; i++)
			hex_ok &= hexv(data[i]) >= 0;
	}
	if (hex_ok) {
		FUZZ_ASSERT(r == 0);
		for (size_t i = 0; i < CF_KEY_LEN; i++)
			FUZZ_ASSERT(key[i] == (hexv(data[b + 2 * i]) << 4 | hexv(data[b + 2 * i + 1])));
	} else if (size == CF_KEY_LEN) {
		size_t nhex = 0;
		for (size_t i = 0; i < CF_KEY_LEN; i++)
			nhex += hexv(data[i]) >= 0;
		if (nhex == CF_KEY_LEN)
			FUZZ_ASSERT(r == -EINVAL);
		else
			FUZZ_ASSERT(r == 0 && memcmp(key, data, CF_KEY_LEN) == 0);
	} else {
		FUZZ_ASSERT(r == -EINVAL);
	}
	return 0;
}
