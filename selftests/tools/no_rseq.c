// SPDX-License-Identifier: MIT
/*
 * no_rseq - run a program in a sandbox without rseq.
 *
 *   no_rseq PROGRAM [ARG...]
 *
 * Installs a seccomp filter that makes the rseq system call fail with
 * ENOSYS and allows every other call, then execvp()s PROGRAM. The filter
 * is inherited across execve and fork, so the program and its children
 * run as under container runtimes and sandboxes whose seccomp profile
 * predates rseq: glibc's registration at start-up fails and glibc goes on
 * without it (it would abort a thread on most other errors, hence ENOSYS),
 * musl never registers, and slab must fall back to per-thread caches.
 *
 * Exit status: that of PROGRAM; 4 (kselftest skip) when the filter cannot
 * be installed or the machine is not x86-64, 127 when exec fails.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#ifndef __NR_rseq
#define __NR_rseq 334
#endif

int main(int argc, char **argv)
{
	struct sock_filter filter[] = {
		/* Another architecture's numbers mean other calls: allow. */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_rseq, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {
		.len = sizeof(filter) / sizeof(filter[0]),
		.filter = filter,
	};

	if (argc < 2) {
		fprintf(stderr, "usage: %s PROGRAM [ARG...]\n", argv[0]);
		return 2;
	}
#ifndef __x86_64__
	fprintf(stderr, "no_rseq: only x86-64 is supported\n");
	return 4;
#endif
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) {
		fprintf(stderr, "no_rseq: PR_SET_NO_NEW_PRIVS: %s\n",
			strerror(errno));
		return 4;
	}
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0)) {
		fprintf(stderr, "no_rseq: PR_SET_SECCOMP: %s\n",
			strerror(errno));
		return 4;
	}
	/* Check that the filter works: rseq(NULL, 0, 0, 0) gives ENOSYS. */
	if (syscall(__NR_rseq, NULL, 0, 0, 0) != -1 || errno != ENOSYS) {
		fprintf(stderr, "no_rseq: the filter does not hide rseq\n");
		return 4;
	}
	execvp(argv[1], argv + 1);
	fprintf(stderr, "no_rseq: %s: %s\n", argv[1], strerror(errno));
	return 127;
}
