// SPDX-License-Identifier: MIT
/*
 * link_getline - calls getline and free only (no other allocator call).
 *
 * The lines come through a pipe set up as stdin, so stdio is the only
 * other part of libc involved. In a static musl build libc.a's getline
 * (getdelim) reallocs the buffer: the link must work and the buffer must
 * grow through the wrapped realloc.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char data[40000];

int main(void)
{
	size_t len, n = 0, off, want[4] = { 5, 0, 30000, 7 };
	char *line = NULL;
	int pfd[2], i;
	ssize_t r;

	/* lines of 5, 0, 30000 and 7 characters */
	for (i = 0, off = 0; i < 4; i++) {
		memset(data + off, 'a' + i, want[i]);
		off += want[i];
		data[off++] = '\n';
	}
	len = off;
	if (pipe(pfd))
		return 2;
	if (fork() == 0) {
		close(pfd[0]);
		for (off = 0; off < len; off += r) {
			r = write(pfd[1], data + off, len - off);
			if (r <= 0)
				_exit(1);
		}
		_exit(0);
	}
	close(pfd[1]);
	if (dup2(pfd[0], STDIN_FILENO) < 0)
		return 2;
	for (i = 0; i < 4; i++) {
		r = getline(&line, &n, stdin);
		if (r != (ssize_t)want[i] + 1 || n < want[i] + 1)
			return 1;
		if (want[i] &&
		    (line[0] != 'a' + i || line[want[i] - 1] != 'a' + i))
			return 1;
	}
	if (getline(&line, &n, stdin) != -1)
		return 1;
	free(line);
	return 0;
}
