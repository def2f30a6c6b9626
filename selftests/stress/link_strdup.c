// SPDX-License-Identifier: MIT
/*
 * link_strdup - calls strdup and free only.
 *
 * In a static musl build libc.a's strdup references malloc: the wrap must
 * send it to slab, and the link must not end up with two allocators
 * fighting over the malloc symbols.
 */
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	char *s = strdup(argc > 0 ? argv[0] : "link_strdup");

	if (!s || strcmp(s, argc > 0 ? argv[0] : "link_strdup"))
		return 1;
	free(s);
	return 0;
}
