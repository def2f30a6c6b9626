// SPDX-License-Identifier: MIT
/*
 * runone.c - run one command, measure it, kill it if it overstays.
 *
 *   runone [-t SECONDS] [-o OUT] [-e ERR] [-E NAME=VALUE]... -- PROG [ARG]...
 *
 * Runs PROG in a process group of its own with stdout to OUT and stderr to
 * ERR (default /dev/null for both), waits for it with wait4() and prints
 * one line on stdout:
 *
 *   wall=S user=S sys=S maxrss_kb=N status=ok|exit:N|signal:N|timeout
 *
 * wall is measured with CLOCK_MONOTONIC around fork() and wait4(), to the
 * microsecond (GNU time's %e has 10 ms steps); user, sys and maxrss come
 * from the rusage of the child. After SECONDS (default 60) the whole
 * process group gets SIGKILL and the status is "timeout". -E adds a
 * variable to the child's environment.
 *
 * Exit status: 0 when PROG exited 0, 1 when it failed or was killed, 2 for
 * a usage error or when PROG could not be started (status=exit:127).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t timed_out;
static volatile pid_t child;

static void on_alarm(int sig)
{
	(void)sig;
	timed_out = 1;
	if (child > 0)
		kill(-child, SIGKILL);
}

static void usage(void)
{
	fprintf(stderr, "usage: runone [-t SECONDS] [-o OUT] [-e ERR] "
			"[-E NAME=VALUE]... -- PROG [ARG]...\n");
	exit(2);
}

static int redirect(const char *path, int fd)
{
	int f = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (f < 0)
		return -1;
	if (dup2(f, fd) < 0)
		return -1;
	close(f);
	return 0;
}

static double since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) + (t1.tv_nsec - t0->tv_nsec) / 1e9;
}

int main(int argc, char **argv)
{
	const char *out = "/dev/null", *err = "/dev/null";
	unsigned int limit = 60;
	struct sigaction sa;
	struct rusage ru;
	struct timespec t0;
	double wall;
	char status[32];
	int opt, ws, ret;
	pid_t pid;

	while ((opt = getopt(argc, argv, "+t:o:e:E:")) != -1) {
		switch (opt) {
		case 't':
			limit = (unsigned int)strtoul(optarg, NULL, 10);
			if (!limit)
				usage();
			break;
		case 'o':
			out = optarg;
			break;
		case 'e':
			err = optarg;
			break;
		case 'E':
			if (!strchr(optarg, '=') || putenv(optarg))
				usage();
			break;
		default:
			usage();
		}
	}
	if (optind >= argc)
		usage();

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid = fork();
	if (pid < 0) {
		perror("runone: fork");
		return 2;
	}
	if (pid == 0) {
		setpgid(0, 0);
		if (redirect(out, STDOUT_FILENO) ||
		    redirect(err, STDERR_FILENO)) {
			perror("runone: redirect");
			_exit(127);
		}
		execvp(argv[optind], argv + optind);
		fprintf(stderr, "runone: cannot run %s: %s\n", argv[optind],
			strerror(errno));
		_exit(127);
	}
	/* Both sides set the group, so that the kill below cannot miss it. */
	setpgid(pid, pid);
	child = pid;
	alarm(limit);
	while (wait4(pid, &ws, 0, &ru) < 0) {
		if (errno != EINTR) {
			perror("runone: wait4");
			kill(-pid, SIGKILL);
			return 2;
		}
	}
	wall = since(&t0);
	alarm(0);
	/* Anything the child left running in its group goes with it. */
	kill(-pid, SIGKILL);

	ret = 1;
	if (timed_out) {
		snprintf(status, sizeof(status), "timeout");
	} else if (WIFSIGNALED(ws)) {
		snprintf(status, sizeof(status), "signal:%d", WTERMSIG(ws));
	} else if (WEXITSTATUS(ws)) {
		snprintf(status, sizeof(status), "exit:%d", WEXITSTATUS(ws));
		if (WEXITSTATUS(ws) == 127)
			ret = 2;
	} else {
		snprintf(status, sizeof(status), "ok");
		ret = 0;
	}
	printf("wall=%.6f user=%.6f sys=%.6f maxrss_kb=%ld status=%s\n", wall,
	       ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
	       ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6, ru.ru_maxrss,
	       status);
	return ret;
}
