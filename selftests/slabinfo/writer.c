// SPDX-License-Identifier: MIT
/*
 * writer.c - a fake publisher of /dev/shm/slab-<pid>, to test how slabinfo
 * reads the file: it does not link slab, it writes the documented layout
 * (slab/include/slab_stats.h) the way slab/stats.c does.
 *
 *   writer churn READY   rewrite the file every 20 us or so (slab does it
 *                        at most every 200 ms); every figure of every
 *                        record is the same number k, and k changes at
 *                        each update: a reader that mixes two updates
 *                        shows two different numbers
 *   writer odd READY     publish once, then leave seq odd, as a writer
 *                        that stopped in the middle of an update
 *   writer fresh READY   create the file empty (as publish_open() does
 *                        before it fills the header), signal READY, and
 *                        fill it 300 ms later
 *
 * READY is created when the file exists. SIGTERM ends it and removes the
 * file.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "slab_stats.h"

#define NR_CACHES 40

static volatile sig_atomic_t stop;
static char path[64];

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void die(const char *what)
{
	fprintf(stderr, "writer: %s: %s\n", what, strerror(errno));
	unlink(path);
	exit(1);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static uint64_t start_time(void)
{
	char buf[1024], *p;
	int fd, field;
	ssize_t n;

	fd = open("/proc/self/stat", O_RDONLY);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	p = strrchr(buf, ')');
	if (!p)
		return 0;
	for (field = 2; *p && field < 22; p++)
		if (*p == ' ')
			field++;
	return strtoull(p, NULL, 10);
}

static void ready(const char *file)
{
	int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0 || write(fd, "1\n", 2) != 2)
		die(file);
	close(fd);
}

static void fill_header(struct slab_stats_file *f)
{
	f->magic = SLAB_STATS_MAGIC;
	f->version = SLAB_STATS_VERSION;
	f->header_size = sizeof(*f);
	f->cache_size = sizeof(f->caches[0]);
	f->max_caches = NR_CACHES;
	f->pid = (int32_t)getpid();
	f->start_time = start_time();
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* One update in which every figure is @k; seq left odd if @leave_odd. */
static void update(struct slab_stats_file *f, uint64_t k, int leave_odd)
{
	struct slab_cache_info *c;
	unsigned int i;

	__atomic_store_n(&f->seq, f->seq + 1, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	for (i = 0; i < NR_CACHES; i++) {
		c = &f->caches[i];
		snprintf(c->name, sizeof(c->name), "cache-%u", i);
		c->object_size = 64;
		c->objs_per_slab = 1;
		c->pages_per_slab = 1;
		c->flags = SLAB_INFO_NAMED;
		c->active_objs = k;
		c->total_objs = k;
		c->active_slabs = k;
		c->total_slabs = k;
	}
	f->global.slab_bytes = k * 4096 * NR_CACHES;
	f->global.large_nr = k;
	f->nr_caches = NR_CACHES;
	f->updated_ms = now_ms();
	if (leave_odd)
		return;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	__atomic_store_n(&f->seq, f->seq + 1, __ATOMIC_RELEASE);
}

int main(int argc, char **argv)
{
	size_t size = sizeof(struct slab_stats_file) +
		      NR_CACHES * sizeof(struct slab_cache_info);
	struct slab_stats_file *f;
	struct sigaction sa;
	struct timespec pause_ts = { 0, 20000 };
	uint64_t k = 1;
	int fd;

	if (argc != 3) {
		fprintf(stderr, "usage: writer churn|odd|fresh READY_FILE\n");
		return 2;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	snprintf(path, sizeof(path), SLAB_STATS_PATH_FMT, (int)getpid());
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)size))
		die(path);
	f = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (f == MAP_FAILED)
		die("mmap");
	close(fd);

	if (!strcmp(argv[1], "fresh")) {
		ready(argv[2]);
		sleep_ms(300);
	}
	fill_header(f);
	update(f, k++, 0);
	if (!strcmp(argv[1], "odd"))
		update(f, k++, 1);
	if (strcmp(argv[1], "fresh"))
		ready(argv[2]);
	while (!stop) {
		if (!strcmp(argv[1], "churn")) {
			update(f, k++, 0);
			/* Often, but not always, in the middle of a copy. */
			nanosleep(&pause_ts, NULL);
		} else
			pause();
	}
	unlink(path);
	return 0;
}
