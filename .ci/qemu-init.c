// SPDX-License-Identifier: MIT
/*
 * qemu-init.c - /init of the initramfs that .ci/qemu-kernel boots, and the
 * rseq probe that it runs first.
 *
 * As PID 1 (musl-gcc -static): mounts proc, sys, devtmpfs, and tmpfs on
 * /tmp and /dev/shm, prints the kernel release and its rseq auxv entries,
 * runs the probes /tests/<libc>/rseq-probe*, then every run of /plan, each
 * in its own process group with a timeout, its output captured in /tmp and
 * shown only when it fails, and prints TAP lines, a final
 *
 *   QEMU-RESULT pass=X fail=Y skip=Z notrun=N total=T
 *
 * and powers the machine off.
 *
 * /plan, one entry per line, fields separated by TABs:
 *
 *   keep-going<TAB>0|1
 *   run<TAB>NAME<TAB>TIMEOUT_S<TAB>DIR<TAB>ENV|-<TAB>PROGRAM [ARGS] [; PROGRAM [ARGS]]...
 *
 * ENV and ARGS are space-separated (no quoting). A " ; " sequence runs
 * its commands in turn and stops at the first that does not exit 0. The environment of a run
 * is PATH, HOME, TMPDIR plus ENV: anything else is unset. Exit status 0 is
 * a pass, 4 a skip (kselftest), anything else a failure.
 *
 * Run as anything else than PID 1 (also built dynamically against glibc,
 * with and without an executable's own __rseq_size), it is the probe: it
 * prints AT_RSEQ_FEATURE_SIZE and AT_RSEQ_ALIGN, glibc's __rseq_size and
 * __rseq_offset when linked with glibc, and, from two threads pinned to
 * two CPUs at the same time, the cpu_id and mm_cid fields of the rseq
 * area the thread uses: glibc's, or one it registers itself (musl). A
 * kernel without mm_cid (before 6.3) leaves the field as the registrant
 * wrote it (glibc: 0; the probe's own area: 0xdeadbeef).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <gnu/libc-version.h>
#endif

#ifndef AT_RSEQ_FEATURE_SIZE
#define AT_RSEQ_FEATURE_SIZE 27
#endif
#ifndef AT_RSEQ_ALIGN
#define AT_RSEQ_ALIGN 28
#endif

/* glibc 2.35+ (ld.so); absent (NULL) in a static musl binary. */
extern const unsigned int __rseq_size __attribute__((weak));
extern const ptrdiff_t __rseq_offset __attribute__((weak));

#define LOG_TAIL_LINES 200
#define MAX_RUNS       1024
#define MAX_WORDS      64

/* ---------------------------------------------------------- probe -- */

struct probe_rseq {
	uint32_t cpu_id_start;
	uint32_t cpu_id;
	uint64_t rseq_cs;
	uint32_t flags;
	uint32_t node_id;
	uint32_t mm_cid;
	uint32_t pad;
} __attribute__((aligned(32)));

#define PROBE_THREADS  2
#define PROBE_SENTINEL 0xdeadbeefu
#define RSEQ_SIG       0x53053053

static struct probe_rseq own_area[PROBE_THREADS];
static pthread_barrier_t probe_barrier;
static const char *probe_name = "probe";

static void *thread_pointer(void)
{
#if defined(__x86_64__)
	void *tp;

	__asm__("mov %%fs:0, %0" : "=r"(tp));
	return tp;
#else
	return NULL;
#endif
}

static const char *libc_version(void)
{
#ifdef __GLIBC__
	return gnu_get_libc_version();
#else
	return "?";
#endif
}

static void auxv_show(const char *who)
{
	unsigned long fs, al;
	int fs_err, al_err;

	errno = 0;
	fs = getauxval(AT_RSEQ_FEATURE_SIZE);
	fs_err = errno;
	errno = 0;
	al = getauxval(AT_RSEQ_ALIGN);
	al_err = errno;
	printf("%s: getauxval(27 AT_RSEQ_FEATURE_SIZE) = %lu%s, "
	       "getauxval(28 AT_RSEQ_ALIGN) = %lu%s\n",
	       who, fs, fs_err ? " (absent)" : "", al,
	       al_err ? " (absent)" : "");
}

static void *probe_thread(void *arg)
{
	long i = (long)arg;
	volatile struct probe_rseq *area = NULL;
	const char *whose = "none";
	int registered = 0;
	cpu_set_t set;
	unsigned long spin;
	uint32_t cpu, cid;

	CPU_ZERO(&set);
	CPU_SET((int)i, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		printf("%s: thread %ld: sched_setaffinity(cpu %ld): %s\n",
		       probe_name, i, i, strerror(errno));
	if (&__rseq_size && &__rseq_offset && __rseq_size > 0) {
		area = (void *)((char *)thread_pointer() + __rseq_offset);
		whose = "glibc's area";
	} else {
		own_area[i].cpu_id = (uint32_t)-1;
		own_area[i].mm_cid = PROBE_SENTINEL;
		own_area[i].node_id = PROBE_SENTINEL;
		if (syscall(SYS_rseq, &own_area[i], sizeof(own_area[i]), 0,
			    RSEQ_SIG) == 0) {
			area = &own_area[i];
			registered = 1;
			whose = "own 32-byte registration";
		} else {
			printf("%s: thread %ld: rseq registration: %s\n",
			       probe_name, i, strerror(errno));
		}
	}
	/* Both threads on their CPUs at the same time. */
	pthread_barrier_wait(&probe_barrier);
	for (spin = 0; spin < 20000000; spin++)
		__asm__ volatile("" ::: "memory");
	sched_yield();
	if (area) {
		cpu = area->cpu_id;
		cid = area->mm_cid;
		printf("%s: thread %ld pinned to cpu %ld: %s: cpu_id %u, "
		       "mm_cid %u%s\n",
		       probe_name, i, i, whose, cpu, cid,
		       cid == PROBE_SENTINEL ?
			       " (0xdeadbeef as written: kernel has no mm_cid)" :
			       "");
	}
	pthread_barrier_wait(&probe_barrier);
	if (registered)
		syscall(SYS_rseq, &own_area[i], sizeof(own_area[i]), 1,
			RSEQ_SIG);
	return NULL;
}

static int probe(const char *argv0)
{
	pthread_t t[PROBE_THREADS];
	long i;

	probe_name = strrchr(argv0, '/') ? strrchr(argv0, '/') + 1 : argv0;
	setvbuf(stdout, NULL, _IOLBF, 0);
	auxv_show(probe_name);
	if (&__rseq_size && &__rseq_offset)
		printf("%s: glibc %s, __rseq_size = %u, __rseq_offset = %td\n",
		       probe_name, libc_version(), __rseq_size, __rseq_offset);
	else
		printf("%s: no __rseq_size (not glibc): registers its own "
		       "area\n",
		       probe_name);
	if (sysconf(_SC_NPROCESSORS_ONLN) < PROBE_THREADS) {
		printf("%s: fewer than %d CPUs online, no thread probe\n",
		       probe_name, PROBE_THREADS);
		return 0;
	}
	pthread_barrier_init(&probe_barrier, NULL, PROBE_THREADS);
	for (i = 0; i < PROBE_THREADS; i++)
		if (pthread_create(&t[i], NULL, probe_thread, (void *)i)) {
			printf("%s: pthread_create failed\n", probe_name);
			return 1;
		}
	for (i = 0; i < PROBE_THREADS; i++)
		pthread_join(t[i], NULL);
	return 0;
}

/* ----------------------------------------------------------- init -- */

struct run {
	char *name;
	unsigned int timeout;
	char *dir;
	char *env[MAX_WORDS + 8];
	char *argv[MAX_WORDS + 1];
};

static struct run runs[MAX_RUNS];
static int nruns;
static int keep_going;
static volatile sig_atomic_t alarmed;

static void on_alarm(int sig)
{
	(void)sig;
	alarmed = 1;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void mount_one(const char *src, const char *dir, const char *type,
		      const char *data)
{
	mkdir(dir, 0755);
	if (mount(src, dir, type, 0, data) && errno != EBUSY)
		printf("# init: mount %s on %s: %s\n", type, dir,
		       strerror(errno));
}

static void console(void)
{
	int fd = open("/dev/console", O_RDWR | O_NOCTTY);

	if (fd < 0)
		return;
	dup2(fd, 0);
	dup2(fd, 1);
	dup2(fd, 2);
	if (fd > 2)
		close(fd);
}

static int split(char *s, char **words, int max)
{
	int n = 0;
	char *save = NULL, *w;

	for (w = strtok_r(s, " ", &save); w && n < max;
	     w = strtok_r(NULL, " ", &save))
		words[n++] = w;
	words[n] = NULL;
	return n;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0, cap = 0, got;

	if (!f)
		return NULL;
	do {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 65536;
			buf = realloc(buf, cap + 1);
			if (!buf)
				return NULL;
		}
		got = fread(buf + len, 1, cap - len, f);
		len += got;
	} while (got);
	fclose(f);
	buf[len] = 0;
	return buf;
}

static int read_plan(const char *path)
{
	char *text = slurp(path), *line, *save = NULL;
	char *field[6];
	int nf, k;

	if (!text) {
		printf("# init: cannot read %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *p = line, *tab;
		struct run *r;

		for (nf = 0; nf < 6; nf++) {
			field[nf] = p;
			tab = strchr(p, '\t');
			if (!tab) {
				nf++;
				break;
			}
			*tab = 0;
			p = tab + 1;
		}
		if (!strcmp(field[0], "keep-going") && nf >= 2) {
			keep_going = atoi(field[1]);
			continue;
		}
		if (strcmp(field[0], "run") || nf < 6) {
			if (field[0][0] && field[0][0] != '#')
				printf("# init: bad plan line: %s\n", field[0]);
			continue;
		}
		if (nruns == MAX_RUNS)
			break;
		r = &runs[nruns++];
		r->name = field[1];
		r->timeout = (unsigned int)strtoul(field[2], NULL, 10);
		if (!r->timeout)
			r->timeout = 300;
		r->dir = field[3];
		k = 0;
		r->env[k++] = "PATH=/bin:/usr/bin";
		r->env[k++] = "HOME=/tmp";
		r->env[k++] = "TMPDIR=/tmp";
		if (strcmp(field[4], "-"))
			k += split(field[4], r->env + k, MAX_WORDS);
		r->env[k] = NULL;
		split(field[5], r->argv, MAX_WORDS);
	}
	return 0;
}

/* Print the last LOG_TAIL_LINES lines of @path, each prefixed "# ". */
static void show_log(const char *path)
{
	char *text = slurp(path), *p, *start;
	int lines = 0;

	if (!text)
		return;
	p = text + strlen(text);
	start = text;
	while (p > text) {
		p--;
		if (*p == '\n' && p[1] && ++lines >= LOG_TAIL_LINES) {
			start = p + 1;
			printf("# [... earlier lines in %s left out]\n", path);
			break;
		}
	}
	for (p = start; *p;) {
		char *nl = strchr(p, '\n');
		int n = nl ? (int)(nl - p) : (int)strlen(p);

		printf("# %.*s\n", n, p);
		p += n + (nl ? 1 : 0);
	}
	free(text);
}

/* Last non-empty line of @path into @buf (for SKIP reasons). */
static void last_line(const char *path, char *buf, size_t size)
{
	char *text = slurp(path), *end, *start;

	buf[0] = 0;
	if (!text)
		return;
	end = text + strlen(text);
	while (end > text && (end[-1] == '\n' || end[-1] == ' '))
		end--;
	*end = 0;
	start = strrchr(text, '\n');
	start = start ? start + 1 : text;
	snprintf(buf, size, "%s", start);
	free(text);
}

static int has_sequence(char **argv)
{
	for (; *argv; argv++)
		if (!strcmp(*argv, ";"))
			return 1;
	return 0;
}

/*
 * PROGRAM ARGS ; PROGRAM ARGS ...: run each in turn (in the child, inside
 * the run's process group and timeout); stop at the first that does not
 * exit 0 and exit with its status (128 + signal for a signal).
 */
static int run_sequence(char **argv, char **env)
{
	char **cmd = argv, **end;
	int st, i, last;
	pid_t pid;

	while (*cmd) {
		for (end = cmd; *end && strcmp(*end, ";"); end++)
			;
		if (end == cmd) {
			cmd = *end ? end + 1 : end;
			continue;
		}
		last = !*end;
		*end = NULL;
		fprintf(stderr, "+");
		for (i = 0; cmd[i]; i++)
			fprintf(stderr, " %s", cmd[i]);
		fprintf(stderr, "\n");
		fflush(NULL);
		pid = fork();
		if (pid < 0) {
			dprintf(2, "init: fork: %s\n", strerror(errno));
			return 127;
		}
		if (pid == 0) {
			execve(cmd[0], cmd, env);
			dprintf(2, "init: exec %s: %s\n", cmd[0],
				strerror(errno));
			_exit(127);
		}
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		if (WIFSIGNALED(st))
			return 128 + WTERMSIG(st);
		if (WEXITSTATUS(st))
			return WEXITSTATUS(st);
		if (last)
			break;
		cmd = end + 1;
	}
	return 0;
}

/* Run @r; returns its wait status, or -1 when it timed out. */
static int run_one(struct run *r, const char *log)
{
	struct sigaction sa;
	int st = 0, timed_out = 0;
	pid_t pid, w;

	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		printf("# init: fork: %s\n", strerror(errno));
		return 127 << 8;
	}
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int nul = open("/dev/null", O_RDONLY);
		sigset_t none;

		setpgid(0, 0);
		if (nul >= 0)
			dup2(nul, 0);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		signal(SIGALRM, SIG_DFL);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (chdir(r->dir))
			dprintf(2, "init: chdir %s: %s\n", r->dir,
				strerror(errno));
		if (!has_sequence(r->argv)) {
			execve(r->argv[0], r->argv, r->env);
			dprintf(2, "init: exec %s: %s\n", r->argv[0],
				strerror(errno));
			_exit(127);
		}
		_exit(run_sequence(r->argv, r->env));
	}
	setpgid(pid, pid);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm; /* no SA_RESTART: waitpid gets EINTR */
	sigaction(SIGALRM, &sa, NULL);
	alarmed = 0;
	alarm(r->timeout);
	for (;;) {
		w = waitpid(-1, &st, 0);
		if (w == pid)
			break;
		if (w < 0 && errno == EINTR && alarmed) {
			alarmed = 0;
			timed_out = 1;
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
		} else if (w < 0 && errno == ECHILD) {
			break;
		}
		/* otherwise: an orphan reparented to us, reaped */
	}
	alarm(0);
	kill(-pid, SIGKILL); /* what the test left behind in its group */
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	return timed_out ? -1 : st;
}

static void run_probes(void)
{
	static const char *const probes[] = {
		"/tests/musl/rseq-probe",
		"/tests/glibc/rseq-probe",
		"/tests/glibc/rseq-probe-rseq32",
	};
	struct run r;
	unsigned int i;
	int st;

	for (i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		if (access(probes[i], X_OK))
			continue;
		memset(&r, 0, sizeof(r));
		r.name = (char *)probes[i];
		r.timeout = 60;
		r.dir = "/tmp";
		r.env[0] = "PATH=/bin";
		r.argv[0] = (char *)probes[i];
		st = run_one(&r, "/tmp/probe.log");
		show_log("/tmp/probe.log");
		if (st)
			printf("# %s: exit status 0x%x\n", probes[i], st);
	}
}

static void power_off(void)
{
	fflush(stdout);
	sync();
	reboot(RB_POWER_OFF);
	/* Not reached; if it is, panic=-1 and -no-reboot end qemu. */
	_exit(1);
}

int main(int argc, char **argv)
{
	struct utsname u;
	int pass = 0, fail = 0, skip = 0, i, n = 0;
	double t0 = now_s();

	(void)argc;
	if (getpid() != 1)
		return probe(argv[0]);

	mount_one("devtmpfs", "/dev", "devtmpfs", NULL);
	console();
	setvbuf(stdout, NULL, _IOLBF, 0);
	mount_one("proc", "/proc", "proc", NULL);
	mount_one("sysfs", "/sys", "sysfs", NULL);
	mount_one("tmpfs", "/tmp", "tmpfs", "mode=1777");
	mount_one("tmpfs", "/dev/shm", "tmpfs", "mode=1777");

	printf("\n");
	if (uname(&u) == 0)
		printf("QEMU-KERNEL %s %s %s, %ld CPUs online\n", u.release,
		       u.version, u.machine, sysconf(_SC_NPROCESSORS_ONLN));
	printf("# ");
	auxv_show("init");
	probe_name = "init";
	run_probes();

	if (read_plan("/plan"))
		power_off();
	printf("TAP version 13\n1..%d\n", nruns);
	for (i = 0; i < nruns; i++) {
		struct run *r = &runs[i];
		char log[64], reason[200];
		double t = now_s();
		int st;

		snprintf(log, sizeof(log), "/tmp/run-%d.log", i + 1);
		st = run_one(r, log);
		t = now_s() - t;
		n++;
		if (st == 0) {
			pass++;
			printf("ok %d %s\n", n, r->name);
		} else if (st > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 4) {
			skip++;
			last_line(log, reason, sizeof(reason));
			printf("ok %d %s # SKIP %s\n", n, r->name, reason);
		} else {
			fail++;
			show_log(log);
			if (st < 0)
				snprintf(reason, sizeof(reason),
					 "TIMEOUT %u seconds", r->timeout);
			else if (WIFSIGNALED(st))
				snprintf(reason, sizeof(reason),
					 "signal %d (%s)", WTERMSIG(st),
					 strsignal(WTERMSIG(st)));
			else
				snprintf(reason, sizeof(reason), "exit=%d",
					 WEXITSTATUS(st));
			printf("not ok %d %s # %s\n", n, r->name, reason);
		}
		printf("#   %.1f s\n", t);
		unlink(log);
		if (fail && !keep_going && i + 1 < nruns) {
			printf("# stopping at the first failure "
			       "(.ci/qemu-kernel -k runs everything)\n");
			break;
		}
	}
	printf("# Totals: pass:%d fail:%d xfail:0 xpass:0 skip:%d error:0\n",
	       pass, fail, skip);
	printf("QEMU-RESULT pass=%d fail=%d skip=%d notrun=%d total=%d "
	       "time=%.0fs\n",
	       pass, fail, skip, nruns - n, nruns, now_s() - t0);
	power_off();
	return 0;
}
