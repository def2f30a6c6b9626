// SPDX-License-Identifier: MIT
/*
 * link_valloc - calls valloc and free only.
 *
 * In a static musl build nothing else pulls in the allocator: the point
 * is that this links with the slab flags (libc.a's valloc must not drag
 * in a second malloc, or the wrap must cover it) and runs.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
	long pg = sysconf(_SC_PAGESIZE);
	char *p = valloc(3 * pg + 1);

	if (!p || ((uintptr_t)p & (pg - 1)))
		return 1;
	memset(p, 0x5a, 3 * pg + 1);
	if (p[3 * pg] != 0x5a)
		return 1;
	free(p);
	return 0;
}
