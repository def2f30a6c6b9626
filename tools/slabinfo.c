// SPDX-License-Identifier: MIT
/*
 * slabinfo.c - show the slab statistics that a process linked with slab
 * publishes in /dev/shm/slab-<pid> (SLAB_OPTIONS=publish), in the manner
 * of the Linux kernel's tools/mm/slabinfo and slabtop.
 *
 *   slabinfo -p PID            caches with slabs, sorted by name
 *   slabinfo -p PID -T         the allocator's totals
 *   slabinfo -p PID -r NAME    every figure of one cache
 *   slabinfo -p PID -w [SECS]  refresh like slabtop until q or Ctrl-C
 *   slabinfo -f FILE ...       read a statistics file directly
 *
 * The file is struct slab_stats_file followed by nr_caches records
 * (slab/include/slab_stats.h). The writer makes seq odd while it updates;
 * we copy the whole file and retry while seq is odd or changed during the
 * copy. pid, start_time (field 22 of /proc/<pid>/stat) and the mapping
 * of the file in /proc/<pid>/maps tell a live file from one left behind
 * by a process that was killed or called exec(): with -p such a file is
 * an error, with -f a warning.
 *
 * This program does not link the allocator: slab_stats.h is only a layout.
 * Documentation/slabinfo.md describes every option and message.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "slab.h"
#include "slab_stats.h"

#define PROG "slabinfo"

/* slab's page size: slab sizes in the file are counted in these. */
#define SLAB_PAGE_SIZE 4096ULL

/* Copy attempts before giving up on a file that keeps changing. */
#define SEQ_RETRIES   1000
/* How long a freshly created file may stay empty (ms). */
#define FRESH_WAIT_MS 1000

/* Exit statuses; Documentation/slabinfo.md lists them too. */
enum {
	RC_OK = 0,
	RC_ERROR = 1,     /* I/O error, inconsistent file */
	RC_USAGE = 2,     /* bad command line */
	RC_NOPROC = 3,    /* no process with that PID */
	RC_NOPUBLISH = 4, /* the process publishes nothing */
	RC_ACCESS = 5,    /* permission denied */
	RC_BADFILE = 6,   /* not a slab statistics file */
	RC_STALE = 7,     /* the file outlived its process */
	RC_NOCACHE = 8,   /* -r NAME: no such cache */
};

enum mode { MODE_LIST, MODE_TOTALS, MODE_REPORT, MODE_NAMES, MODE_PROC };

enum sort_key {
	SORT_NAME,
	SORT_SIZE,
	SORT_OBJECTS,
	SORT_SPACE,
	SORT_SLABS,
	SORT_CACHED,
};

static const char *const sort_names[] = {
	[SORT_NAME] = "name",       [SORT_SIZE] = "size",
	[SORT_OBJECTS] = "objects", [SORT_SPACE] = "space",
	[SORT_SLABS] = "slabs",     [SORT_CACHED] = "cached",
};

struct options {
	int pid;          /* -p, or 0 */
	const char *file; /* -f, or NULL */
	enum mode mode;
	const char *report; /* -r NAME */
	int all;            /* -a */
	enum sort_key sort;
	int reverse; /* -i */
	int watch;   /* -w */
	double interval;
	long count; /* -n: refreshes, 0 = until interrupted */
};

/* One consistent copy of a statistics file. */
struct snapshot {
	struct slab_stats_file *f; /* header and f->nr_caches records */
	char path[PATH_MAX];
	char comm[64];   /* the process's name, or "" */
	uint64_t age_ms; /* now - updated_ms */
	int stale;       /* -f: the writer is gone */
	uint32_t cap;    /* records f has room for */
	dev_t dev;       /* the file, to find it in /proc/<pid>/maps */
	ino_t ino;
};

/* What /proc/<pid>/stat says about a process. */
struct proc_info {
	int alive; /* exists and is not a zombie */
	int known; /* start_time and comm are valid */
	unsigned long long start_time;
	char comm[64];
};

static void __attribute__((format(printf, 1, 2))) msg(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static uint64_t realtime_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* ---- the process behind a file ---- */

static void proc_lookup(int pid, struct proc_info *pi)
{
	char path[64], buf[1024], *open_paren, *p;
	int fd, field;
	ssize_t n;

	memset(pi, 0, sizeof(*pi));
	if (pid <= 0)
		return;
	pi->alive = !kill(pid, 0) || errno != ESRCH;
	if (!pi->alive)
		return;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		/* Without /proc, kill() has the last word. */
		if (errno == ENOENT && !access("/proc/self/stat", F_OK))
			pi->alive = 0;
		return;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = 0;
	/* "pid (comm) S ppid ...": comm may hold spaces and parentheses. */
	open_paren = strchr(buf, '(');
	p = strrchr(buf, ')');
	if (!open_paren || !p || p < open_paren || p[1] != ' ')
		return;
	snprintf(pi->comm, sizeof(pi->comm), "%.*s", (int)(p - open_paren - 1),
		 open_paren + 1);
	p += 2;
	/* A zombie has exited: its file is as good as stale. */
	if (*p == 'Z' || *p == 'X')
		pi->alive = 0;
	/* p is at field 3; the start time is field 22. */
	for (field = 3; *p && field < 22; p++)
		if (*p == ' ')
			field++;
	pi->start_time = strtoull(p, NULL, 10);
	pi->known = 1;
}

/*
 * Does process @pid map the file @dev:@ino? A publisher maps its file
 * until it exits; after exec() the new program does not. Returns 1 or 0,
 * or -1 when we cannot tell (no /proc, or its maps are not ours to read).
 */
static int proc_maps_file(int pid, dev_t dev, ino_t ino)
{
	unsigned long long inode;
	unsigned int maj, min;
	char path[64], line[4096];
	int found = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	/* start-end perms offset major:minor inode path */
	while (!found && fgets(line, sizeof(line), f))
		found = sscanf(line, "%*s %*s %*s %x:%x %llu", &maj, &min,
			       &inode) == 3 &&
			inode == (unsigned long long)ino &&
			makedev(maj, min) == dev;
	if (ferror(f))
		found = -1;
	fclose(f);
	return found;
}

/* ---- reading the file ---- */

/* check_header(): the writer has not filled the file in yet. */
#define NOT_READY (-1)

/*
 * Check the header of the mapping @m (@size bytes): RC_OK, RC_BADFILE
 * with a message, or NOT_READY for a file that its writer has created but
 * not filled in (magic) or not published (seq) yet.
 */
static int check_header(const struct slab_stats_file *m, uint64_t size,
			const char *path)
{
	if (m->magic != SLAB_STATS_MAGIC) {
		if (!m->magic && !m->seq)
			return NOT_READY;
		goto bad;
	}
	if (m->version != SLAB_STATS_VERSION) {
		msg("%s: statistics file version %u, this slabinfo reads version %u",
		    path, m->version, SLAB_STATS_VERSION);
		return RC_BADFILE;
	}
	if (m->header_size != sizeof(struct slab_stats_file) ||
	    m->cache_size != sizeof(struct slab_cache_info) ||
	    size < m->header_size + (uint64_t)m->max_caches * m->cache_size)
		goto bad;
	if (!__atomic_load_n(&m->seq, __ATOMIC_ACQUIRE))
		return NOT_READY;
	return RC_OK;
bad:
	msg("%s is not a slab statistics file", path);
	return RC_BADFILE;
}

/*
 * Copy @m into @s->f with the seqlock protocol: retry while seq is odd
 * (an update is under way) or changed during the copy.
 */
static int copy_stats(const struct slab_stats_file *m, struct snapshot *s)
{
	uint64_t seq1, seq2;
	int try, odd = 0;
	uint32_t nr;

	for (try = 0; try < SEQ_RETRIES; try++) {
		if (try > 10)
			sleep_ms(1);
		seq1 = __atomic_load_n(&m->seq, __ATOMIC_ACQUIRE);
		/* A writer that died while updating never makes it even. */
		if ((seq1 & 1) && !(s->stale && try > 10)) {
			odd++;
			continue;
		}
		memcpy(s->f, m, sizeof(*m));
		nr = s->f->nr_caches;
		if (nr <= s->cap)
			memcpy(s->f->caches, m->caches,
			       nr * sizeof(m->caches[0]));
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		seq2 = __atomic_load_n(&m->seq, __ATOMIC_RELAXED);
		if (seq1 != seq2)
			continue;
		if (nr > s->cap) {
			msg("%s is not a slab statistics file (%u records, room for %u)",
			    s->path, nr, s->cap);
			return RC_BADFILE;
		}
		s->f->max_caches = s->cap;
		if (seq1 & 1)
			msg("warning: process %d died while updating %s: the figures may be inconsistent",
			    (int)s->f->pid, s->path);
		return RC_OK;
	}
	if (odd == SEQ_RETRIES)
		msg("%s: process %d has been in the middle of an update for over a second (stopped?)",
		    s->path, (int)m->pid);
	else
		msg("%s: the statistics kept changing while being read (%d tries)",
		    s->path, SEQ_RETRIES);
	return RC_ERROR;
}

static int open_error(const struct options *o, const char *path, int err)
{
	struct proc_info pi;

	if (err == EACCES || err == EPERM) {
		msg("permission denied reading %s (run as the process's user or root)",
		    path);
		return RC_ACCESS;
	}
	if (err != ENOENT || o->file) {
		msg("cannot open %s: %s", path, strerror(err));
		return RC_ERROR;
	}
	proc_lookup(o->pid, &pi);
	if (!pi.alive) {
		msg("no process with PID %d", o->pid);
		return RC_NOPROC;
	}
	msg("process %d does not publish slab statistics (start it with SLAB_OPTIONS=publish, and link it with slab)",
	    o->pid);
	return RC_NOPUBLISH;
}

/*
 * Is the file's writer still the process it names? With -p a stale file is
 * an error; with -f the figures are shown after a warning.
 */
static int check_stale(const struct options *o, struct snapshot *s,
		       const struct slab_stats_file *f)
{
	char why[96];
	struct proc_info pi;
	int pid = o->file ? f->pid : o->pid;

	proc_lookup(pid, &pi);
	if (pi.known)
		snprintf(s->comm, sizeof(s->comm), "%s", pi.comm);
	if (f->pid != pid)
		snprintf(why, sizeof(why), "it was written by process %d",
			 (int)f->pid);
	else if (!pi.alive)
		snprintf(why, sizeof(why), "process %d has exited", pid);
	else if (pi.known && f->start_time && pi.start_time != f->start_time)
		snprintf(why, sizeof(why),
			 "process %d has exited; its PID now belongs to another process",
			 pid);
	else if (!proc_maps_file(pid, s->dev, s->ino))
		snprintf(why, sizeof(why),
			 "process %d has called exec() since: it no longer publishes",
			 pid);
	else
		return RC_OK;
	s->comm[0] = 0;
	if (!o->file) {
		msg("stale statistics file %s (%s)", s->path, why);
		return RC_STALE;
	}
	msg("warning: stale statistics file %s (%s): showing its last figures",
	    s->path, why);
	s->stale = 1;
	return RC_OK;
}

/*
 * Map the file open on @fd and check its header. A file that its writer
 * has just created (empty, or not filled in yet) gets FRESH_WAIT_MS to
 * become valid when we look for a process (-p). Returns RC_OK with *@mp
 * and *@sizep set, or an error with a message printed.
 */
static int map_file(const struct options *o, int fd, struct snapshot *s,
		    const struct slab_stats_file **mp, uint64_t *sizep)
{
	const char *path = s->path;
	const struct slab_stats_file *m;
	unsigned int waited = 0;
	struct stat st;
	uint64_t size;
	int rc;

	for (;;) {
		if (fstat(fd, &st)) {
			msg("cannot stat %s: %s", path, strerror(errno));
			return RC_ERROR;
		}
		if (!S_ISREG(st.st_mode)) {
			msg("%s is not a slab statistics file (not a regular file)",
			    path);
			return RC_BADFILE;
		}
		size = (uint64_t)st.st_size;
		m = NULL;
		rc = NOT_READY;
		if (size >= sizeof(*m)) {
			m = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
			if (m == MAP_FAILED) {
				msg("cannot map %s: %s", path, strerror(errno));
				return RC_ERROR;
			}
			rc = check_header(m, size, path);
		} else if (size) {
			msg("%s is not a slab statistics file", path);
			return RC_BADFILE;
		}
		if (rc != NOT_READY || o->file || waited >= FRESH_WAIT_MS)
			break;
		if (m)
			munmap((void *)m, size);
		sleep_ms(10);
		waited += 10;
	}
	if (rc == NOT_READY) {
		if (m && m->magic) {
			msg("process %d has not published its statistics yet",
			    (int)m->pid);
			rc = RC_NOPUBLISH;
		} else {
			msg("%s is not a slab statistics file (empty, or not filled in yet)",
			    path);
			rc = RC_BADFILE;
		}
	}
	if (rc) {
		if (m)
			munmap((void *)m, size);
		return rc;
	}
	*mp = m;
	*sizep = size;
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	return RC_OK;
}

/* Read and check the file of -p PID or -f FILE into @s. */
static int load(const struct options *o, struct snapshot *s)
{
	const struct slab_stats_file *m;
	uint64_t size, now;
	int fd, rc;

	if (o->file)
		snprintf(s->path, sizeof(s->path), "%s", o->file);
	else
		snprintf(s->path, sizeof(s->path), SLAB_STATS_PATH_FMT, o->pid);
	s->comm[0] = 0;
	s->stale = 0;
	s->f = NULL;
	fd = open(s->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return open_error(o, s->path, errno);
	rc = map_file(o, fd, s, &m, &size);
	close(fd);
	if (rc)
		return rc;
	rc = check_stale(o, s, m);
	if (!rc) {
		s->cap = m->max_caches;
		s->f = malloc(sizeof(*m) +
			      (size_t)s->cap * sizeof(m->caches[0]));
		if (!s->f) {
			msg("out of memory");
			rc = RC_ERROR;
		}
	}
	if (!rc)
		rc = copy_stats(m, s);
	munmap((void *)m, size);
	if (rc) {
		free(s->f);
		s->f = NULL;
		return rc;
	}
	now = realtime_ms();
	s->age_ms = now > s->f->updated_ms ? now - s->f->updated_ms : 0;
	return RC_OK;
}

/* ---- figures ---- */

static uint64_t cache_space(const struct slab_cache_info *c)
{
	return c->total_slabs * c->pages_per_slab * SLAB_PAGE_SIZE;
}

static uint64_t cache_used(const struct slab_cache_info *c)
{
	return c->active_objs * c->object_size;
}

static uint64_t cache_cached(const struct slab_cache_info *c)
{
	return c->cpu_cached + c->depot_objs;
}

static unsigned int percent(uint64_t part, uint64_t whole)
{
	return whole ? (unsigned int)(part * 100 / whole) : 0;
}

/* Free objects as a share of the cache's objects. */
static unsigned int free_percent(const struct slab_cache_info *c)
{
	uint64_t free = c->total_objs > c->active_objs ?
				c->total_objs - c->active_objs :
				0;

	return percent(free, c->total_objs);
}

/* 1023, 1.0K, 12K, 1.5M ...: binary units, at most 4 characters. */
static const char *human(char *buf, size_t len, uint64_t v)
{
	static const char units[] = "KMGTPE";
	double d = (double)v;
	int u = -1;

	if (v < 1024) {
		snprintf(buf, len, "%llu", (unsigned long long)v);
		return buf;
	}
	while (d >= 1024 && u < 5) {
		d /= 1024;
		u++;
	}
	if (d < 9.95)
		snprintf(buf, len, "%.1f%c", d, units[u]);
	else
		snprintf(buf, len, "%.0f%c", d, units[u]);
	return buf;
}

static const char *rseq_mode_name(uint32_t mode)
{
	switch (mode) {
	case SLAB_RSEQ_CPU_ID:
		return "rseq, per-CPU caches indexed by cpu_id";
	case SLAB_RSEQ_MM_CID:
		return "rseq, per-CPU caches indexed by mm_cid";
	case SLAB_RSEQ_FAKE:
		return "rseq code on a fake area (test mode)";
	case SLAB_RSEQ_OFF:
		return "off, per-thread caches";
	default:
		return "not started";
	}
}

/* ---- sorting ---- */

/*
 * Names compare with their numbers as numbers, a "k" after a number
 * counting 1024: kmalloc-96 < kmalloc-112 < kmalloc-1k < kmalloc-1152.
 */
static unsigned long long name_number(const char **sp)
{
	const char *s = *sp;
	unsigned long long v = 0;

	while (*s >= '0' && *s <= '9')
		v = v * 10 + (unsigned long long)(*s++ - '0');
	if ((*s == 'k' || *s == 'K') &&
	    !((s[1] >= 'a' && s[1] <= 'z') || (s[1] >= 'A' && s[1] <= 'Z') ||
	      (s[1] >= '0' && s[1] <= '9'))) {
		v *= 1024;
		s++;
	}
	*sp = s;
	return v;
}

static int name_cmp(const char *a, const char *b)
{
	unsigned long long x, y;

	while (*a && *b) {
		if (*a >= '0' && *a <= '9' && *b >= '0' && *b <= '9') {
			x = name_number(&a);
			y = name_number(&b);
			if (x != y)
				return x < y ? -1 : 1;
			continue;
		}
		if (*a != *b)
			return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
		a++;
		b++;
	}
	return *a ? 1 : *b ? -1 : 0;
}

static enum sort_key sort_by;
static int sort_reverse;

static int cmp_u64(uint64_t a, uint64_t b)
{
	return a < b ? -1 : a > b;
}

/* Numbers sort largest first; names and ties alphabetically. */
static int cache_cmp(const void *pa, const void *pb)
{
	const struct slab_cache_info *a = pa, *b = pb;
	int r = 0;

	switch (sort_by) {
	case SORT_NAME:
		break;
	case SORT_SIZE:
		r = -cmp_u64(a->object_size, b->object_size);
		break;
	case SORT_OBJECTS:
		r = -cmp_u64(a->active_objs, b->active_objs);
		break;
	case SORT_SPACE:
		r = -cmp_u64(cache_space(a), cache_space(b));
		break;
	case SORT_SLABS:
		r = -cmp_u64(a->total_slabs, b->total_slabs);
		break;
	case SORT_CACHED:
		r = -cmp_u64(cache_cached(a), cache_cached(b));
		break;
	}
	if (!r)
		r = name_cmp(a->name, b->name);
	return sort_reverse ? -r : r;
}

static void sort_caches(struct snapshot *s, const struct options *o)
{
	sort_by = o->sort;
	sort_reverse = o->reverse;
	qsort(s->f->caches, s->f->nr_caches, sizeof(s->f->caches[0]),
	      cache_cmp);
}

/* ---- output ---- */

static void print_title(const struct snapshot *s, const char *what)
{
	const struct slab_stats_file *f = s->f;

	printf("%s of pid %d%s%s%s, updated %llu.%llu s ago%s\n", what,
	       (int)f->pid, s->comm[0] ? " (" : "", s->comm,
	       s->comm[0] ? ")" : "", (unsigned long long)(s->age_ms / 1000),
	       (unsigned long long)(s->age_ms % 1000 / 100),
	       s->stale ? " (stale file)" : "");
}

static void list_header(void)
{
	printf("%-20s %8s %7s %6s %18s %4s %3s %3s %3s\n", "Name", "Objects",
	       "Objsize", "Space", "Slabs/Empty/Cached", "O/S", "Pgs", "%Fr",
	       "%Ef");
}

static void list_line(const struct slab_cache_info *c)
{
	char space[16], sec[48];

	snprintf(sec, sizeof(sec), "%llu/%llu/%llu",
		 (unsigned long long)c->total_slabs,
		 (unsigned long long)(c->total_slabs - c->active_slabs),
		 (unsigned long long)cache_cached(c));
	printf("%-20s %8llu %7u %6s %18s %4u %3u %3u %3u\n", c->name,
	       (unsigned long long)c->active_objs, c->object_size,
	       human(space, sizeof(space), cache_space(c)), sec,
	       c->objs_per_slab, c->pages_per_slab, free_percent(c),
	       percent(cache_used(c), cache_space(c)));
}

/* The listing; at most @rows cache lines (0: all). */
static void show_list(const struct snapshot *s, const struct options *o,
		      unsigned int rows)
{
	const struct slab_stats_file *f = s->f;
	unsigned int i, shown = 0;

	list_header();
	for (i = 0; i < f->nr_caches; i++) {
		if (!o->all && !f->caches[i].total_slabs)
			continue;
		if (rows && shown >= rows)
			break;
		list_line(&f->caches[i]);
		shown++;
	}
}

struct totals {
	unsigned int caches, with_slabs, named;
	uint64_t active_objs, total_objs, cpu_cached, depot_objs;
	uint64_t active_slabs, total_slabs, space, used;
};

static void sum_caches(const struct slab_stats_file *f, struct totals *t)
{
	const struct slab_cache_info *c;
	unsigned int i;

	memset(t, 0, sizeof(*t));
	for (i = 0; i < f->nr_caches; i++) {
		c = &f->caches[i];
		t->caches++;
		t->with_slabs += !!c->total_slabs;
		t->named += !!(c->flags & SLAB_INFO_NAMED);
		t->active_objs += c->active_objs;
		t->total_objs += c->total_objs;
		t->cpu_cached += c->cpu_cached;
		t->depot_objs += c->depot_objs;
		t->active_slabs += c->active_slabs;
		t->total_slabs += c->total_slabs;
		t->space += cache_space(c);
		t->used += cache_used(c);
	}
}

static void show_totals(const struct snapshot *s)
{
	const struct slab_stats_file *f = s->f;
	const struct slab_global_info *g = &f->global;
	char b[6][16];
	struct totals t;

	sum_caches(f, &t);
	print_title(s, "Slab totals");
	printf("Caches       : %u (%u with slabs, %u named)%s\n", t.caches,
	       t.with_slabs, t.named,
	       f->nr_caches < f->max_caches ? "" : " (file full)");
	printf("Objects      : %llu in use, %llu total, %llu free (%llu in per-CPU/thread stacks, %llu in depots)\n",
	       (unsigned long long)t.active_objs,
	       (unsigned long long)t.total_objs,
	       (unsigned long long)(t.total_objs - t.active_objs),
	       (unsigned long long)t.cpu_cached,
	       (unsigned long long)t.depot_objs);
	printf("Slabs        : %llu (%llu with objects out, %llu empty)\n",
	       (unsigned long long)t.total_slabs,
	       (unsigned long long)t.active_slabs,
	       (unsigned long long)(t.total_slabs - t.active_slabs));
	printf("Slab memory  : %s in slabs, %s in use (efficiency %u%%)\n",
	       human(b[0], 16, g->slab_bytes), human(b[1], 16, t.used),
	       percent(t.used, g->slab_bytes));
	printf("Large        : %llu allocation%s above 256K, %s\n",
	       (unsigned long long)g->large_nr, g->large_nr == 1 ? "" : "s",
	       human(b[0], 16, g->large_bytes));
	printf("Arena        : reserved %s, committed %s, used %s, resident ~%s\n",
	       human(b[0], 16, g->arena_reserved),
	       human(b[1], 16, g->arena_committed),
	       human(b[2], 16, g->arena_used),
	       human(b[3], 16, g->resident_est));
	printf("Free pages   : %s (dirty %s, kept up to %s), returned to the OS %s (cumulative)\n",
	       human(b[4], 16, g->free_bytes), human(b[5], 16, g->dirty_bytes),
	       human(b[1], 16, g->dirty_limit),
	       human(b[0], 16, g->purged_bytes));
	printf("libc fallback: %llu requests served by libc's malloc, %llu frees of libc's blocks\n",
	       (unsigned long long)g->libc_fallbacks,
	       (unsigned long long)g->foreign_frees);
	if (!g->arena_used)
		printf("Note         : %s\n", SLAB_NEVER_SERVED);
	printf("Per-CPU layer: %s (%.*s), %u regions\n",
	       rseq_mode_name(g->rseq_mode), (int)sizeof(g->rseq_why),
	       g->rseq_why, g->nr_cpus);
	printf("CPU caches   : at most %s each; %llu idle ones given back (%llu objects)%s; %llu capacities moved\n",
	       human(b[0], 16, g->cpu_cache),
	       (unsigned long long)g->idle_drains,
	       (unsigned long long)g->drained_objs,
	       g->membarrier < 0 ? ", not possible here (no membarrier)" : "",
	       (unsigned long long)g->cap_steals);
}

static void show_report(const struct snapshot *s,
			const struct slab_cache_info *c)
{
	uint64_t out = c->active_objs + c->cpu_cached + c->depot_objs;
	uint64_t slab_bytes = c->pages_per_slab * SLAB_PAGE_SIZE;
	char b[3][16], what[64];

	snprintf(what, sizeof(what), "Slab cache %s", c->name);
	print_title(s, what);
	printf("  name            %s\n", c->name);
	printf("  flags           0x%x (%s)\n", c->flags,
	       c->flags & SLAB_INFO_KMALLOC ? "kmalloc size class" :
	       c->flags & SLAB_INFO_NAMED   ? "kmem_cache_create() cache" :
					      "unknown");
	printf("  object_size     %-12u bytes per object\n", c->object_size);
	printf("  objs_per_slab   %-12u %llu bytes lost per slab\n",
	       c->objs_per_slab,
	       (unsigned long long)(slab_bytes - (uint64_t)c->objs_per_slab *
							 c->object_size));
	printf("  pages_per_slab  %-12u %s per slab\n", c->pages_per_slab,
	       human(b[0], 16, slab_bytes));
	printf("  active_objs     %-12llu held by the program\n",
	       (unsigned long long)c->active_objs);
	printf("  total_objs      %-12llu total_slabs * objs_per_slab\n",
	       (unsigned long long)c->total_objs);
	printf("  cpu_cached      %-12llu free, in per-CPU or per-thread stacks\n",
	       (unsigned long long)c->cpu_cached);
	printf("  depot_objs      %-12llu free, in the cache's depot\n",
	       (unsigned long long)c->depot_objs);
	printf("  free in slabs   %-12llu total_objs - active - cached - depot\n",
	       (unsigned long long)(c->total_objs > out ? c->total_objs - out :
							  0));
	printf("  active_slabs    %-12llu slabs with an object out\n",
	       (unsigned long long)c->active_slabs);
	printf("  total_slabs     %-12llu %llu empty\n",
	       (unsigned long long)c->total_slabs,
	       (unsigned long long)(c->total_slabs - c->active_slabs));
	printf("  refills         %-12llu batches taken out (by a per-CPU/thread stack, or kmem_cache_alloc())\n",
	       (unsigned long long)c->refills);
	printf("  drains          %-12llu batches given back\n",
	       (unsigned long long)c->drains);
	printf("  slabs_new       %-12llu slabs taken from the page heap\n",
	       (unsigned long long)c->slabs_new);
	printf("  slabs_freed     %-12llu slabs given back to it\n",
	       (unsigned long long)c->slabs_freed);
	printf("  alloc_fail      %-12llu refills that found no memory\n",
	       (unsigned long long)c->alloc_fail);
	printf("  space           %-12s in slabs (%llu bytes)\n",
	       human(b[1], 16, cache_space(c)),
	       (unsigned long long)cache_space(c));
	printf("  in use          %-12s active_objs * object_size (%llu bytes)\n",
	       human(b[2], 16, cache_used(c)),
	       (unsigned long long)cache_used(c));
	printf("  efficiency      %u%%\n",
	       percent(cache_used(c), cache_space(c)));
	printf("  free objects    %u%%\n", free_percent(c));
}

/* /proc/slabinfo, version 2.1 (every cache, as the kernel lists them). */
static void show_proc(const struct snapshot *s)
{
	const struct slab_cache_info *c;
	unsigned int i;

	printf("slabinfo - version: 2.1\n");
	printf("# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>\n");
	for (i = 0; i < s->f->nr_caches; i++) {
		c = &s->f->caches[i];
		/* No tunables, no shared arrays: limit, batchcount, ... 0. */
		printf("%-17s %6llu %6llu %6u %4u %4u : tunables    0    0    0 : slabdata %6llu %6llu      0\n",
		       c->name, (unsigned long long)c->active_objs,
		       (unsigned long long)c->total_objs, c->object_size,
		       c->objs_per_slab, c->pages_per_slab,
		       (unsigned long long)c->active_slabs,
		       (unsigned long long)c->total_slabs);
	}
}

static void show_names(const struct snapshot *s)
{
	unsigned int i;

	for (i = 0; i < s->f->nr_caches; i++)
		printf("%s\n", s->f->caches[i].name);
}

static const struct slab_cache_info *find_cache(const struct snapshot *s,
						const char *name)
{
	unsigned int i;

	for (i = 0; i < s->f->nr_caches; i++)
		if (!strncmp(s->f->caches[i].name, name,
			     sizeof(s->f->caches[i].name)))
			return &s->f->caches[i];
	return NULL;
}

/* Watch mode: stdin in raw mode, to read keys. */
static volatile sig_atomic_t interrupted;
static struct termios saved_tty;
static int tty_raw;

/* The screen of watch mode: a summary, then the listing. */
static void show_watch(const struct snapshot *s, const struct options *o,
		       unsigned int rows)
{
	const struct slab_global_info *g = &s->f->global;
	char b[4][16];
	struct totals t;

	sum_caches(s->f, &t);
	printf("slabinfo -p %d%s%s%s: updated %llu.%llu s ago, every %.1f s, by %s%s\n",
	       (int)s->f->pid, s->comm[0] ? " (" : "", s->comm,
	       s->comm[0] ? ")" : "", (unsigned long long)(s->age_ms / 1000),
	       (unsigned long long)(s->age_ms % 1000 / 100), o->interval,
	       sort_names[o->sort], o->reverse ? ", reversed" : "");
	printf("Objects in use %llu of %llu (%u%%); slabs %llu, %llu empty; caches %u of %u\n",
	       (unsigned long long)t.active_objs,
	       (unsigned long long)t.total_objs,
	       percent(t.active_objs, t.total_objs),
	       (unsigned long long)t.total_slabs,
	       (unsigned long long)(t.total_slabs - t.active_slabs),
	       t.with_slabs, t.caches);
	printf("Slab memory %s, in use %s (%u%%); large %llu (%s); arena used %s\n",
	       human(b[0], 16, g->slab_bytes), human(b[1], 16, t.used),
	       percent(t.used, g->slab_bytes), (unsigned long long)g->large_nr,
	       human(b[2], 16, g->large_bytes), human(b[3], 16, g->arena_used));
	if (tty_raw)
		printf("q quit, i reverse, sort: n name s size o objects c space l slabs d cached\n");
	putchar('\n');
	show_list(s, o, rows);
}

/* Run the selected view once. */
static int show(struct snapshot *s, const struct options *o)
{
	const struct slab_cache_info *c;

	sort_caches(s, o);
	switch (o->mode) {
	case MODE_LIST:
		print_title(s, "Slab caches");
		show_list(s, o, 0);
		break;
	case MODE_TOTALS:
		show_totals(s);
		break;
	case MODE_REPORT:
		c = find_cache(s, o->report);
		if (!c) {
			msg("no cache named '%s' in %s (slabinfo -l lists them)",
			    o->report, s->path);
			return RC_NOCACHE;
		}
		show_report(s, c);
		break;
	case MODE_NAMES:
		show_names(s);
		break;
	case MODE_PROC:
		show_proc(s);
		break;
	}
	return RC_OK;
}

/* ---- watch mode ---- */

static void on_interrupt(int sig)
{
	(void)sig;
	interrupted = 1;
}

static void tty_restore(void)
{
	if (tty_raw) {
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_tty);
		tty_raw = 0;
	}
}

/* Keys without Enter, no echo; Ctrl-C still sends SIGINT. */
static void tty_setup(void)
{
	struct termios t;

	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_tty))
		return;
	t = saved_tty;
	t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	if (!tcsetattr(STDIN_FILENO, TCSANOW, &t)) {
		tty_raw = 1;
		atexit(tty_restore);
	}
}

/* Wait @ms, or until a key is pressed. Returns the key, 0 or -1 (EOF). */
static int wait_key(long ms)
{
	struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
	char ch;

	if (!tty_raw) {
		struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

		nanosleep(&ts, NULL); /* EINTR: interrupted is set */
		return 0;
	}
	if (poll(&pfd, 1, (int)ms) <= 0)
		return 0;
	if (read(STDIN_FILENO, &ch, 1) != 1)
		return -1;
	return (unsigned char)ch;
}

static unsigned int screen_rows(void)
{
	struct winsize ws;

	if (!isatty(STDOUT_FILENO) || ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) ||
	    ws.ws_row < 8)
		return 0;
	return ws.ws_row - 7; /* summary, keys, blank line, header, spare */
}

static int watch(struct options *o, struct snapshot *s)
{
	int clear = isatty(STDOUT_FILENO), rc = RC_OK, key;
	long refreshes = 0;
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_interrupt; /* no SA_RESTART: wake the sleep */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	tty_setup();
	while (!interrupted) {
		rc = load(o, s);
		if (rc)
			break;
		if (clear)
			fputs("\033[H\033[2J", stdout);
		else if (refreshes)
			putchar('\n');
		sort_caches(s, o);
		if (o->mode == MODE_LIST)
			show_watch(s, o, screen_rows());
		else
			rc = show(s, o);
		free(s->f);
		s->f = NULL;
		fflush(stdout);
		refreshes++;
		if (rc || (o->count && refreshes >= o->count))
			break;
		key = wait_key((long)(o->interval * 1000));
		switch (key) {
		case -1:
		case 'q':
		case 'Q':
			interrupted = 1;
			break;
		case 'n':
			o->sort = SORT_NAME;
			break;
		case 's':
			o->sort = SORT_SIZE;
			break;
		case 'o':
			o->sort = SORT_OBJECTS;
			break;
		case 'c':
			o->sort = SORT_SPACE;
			break;
		case 'l':
			o->sort = SORT_SLABS;
			break;
		case 'd':
			o->sort = SORT_CACHED;
			break;
		case 'i':
			o->reverse = !o->reverse;
			break;
		}
	}
	tty_restore();
	return rc;
}

/* ---- command line ---- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: slabinfo -p PID [options]\n"
		"       slabinfo -f FILE [options]\n"
		"\n"
		"Show the slab allocator statistics that a process publishes in\n"
		"/dev/shm/slab-PID (run it with SLAB_OPTIONS=publish). Figures\n"
		"are refreshed by the process at most every 200 ms, when it\n"
		"allocates or frees on a slow path: the age is shown.\n"
		"\n"
		"  -p, --pid PID       read the statistics of process PID\n"
		"  -f, --file FILE     read a statistics file (a stale one is shown\n"
		"                      after a warning)\n"
		"\n"
		"What to show (one of; default: a line per cache with slabs):\n"
		"  -T, --totals        the allocator's totals: arena, slab and large\n"
		"                      memory, free pages, libc fallbacks, rseq mode\n"
		"  -r, --report NAME   every figure of cache NAME (e.g. kmalloc-112)\n"
		"  -l, --list          the names of all caches\n"
		"  -P, --proc          /proc/slabinfo format (version 2.1), all caches\n"
		"\n"
		"Listing:\n"
		"  -a, --all           include caches without slabs\n"
		"  -s, --sort KEY      sort by KEY: name (default; kmalloc-N in size\n"
		"                      order), size (object size), objects (in use),\n"
		"                      space (memory in slabs), slabs, cached (free\n"
		"                      objects in per-CPU stacks and depots); numbers\n"
		"                      sort largest first\n"
		"  -S                  same as -s space (as the kernel's slabinfo -S)\n"
		"  -i, --reverse       reverse the order\n"
		"\n"
		"Watch:\n"
		"  -w, --watch [SECS]  show the view every SECS seconds (default 1) until\n"
		"                      q or Ctrl-C; keys n s o c l d pick the sort key\n"
		"                      (name size objects space slabs cached), i\n"
		"                      reverses\n"
		"  -n, --count N       stop after N refreshes (implies -w)\n"
		"\n"
		"  -h, --help          this help\n"
		"\n"
		"Columns: Objects in use; Objsize in bytes; Space in slabs (K = 1024);\n"
		"Slabs/Empty/Cached = slabs, slabs with no object out, free objects\n"
		"held in per-CPU/thread stacks and depots; O/S objects per slab; Pgs\n"
		"pages (4 KiB) per slab; %%Fr free objects; %%Ef bytes in use / Space.\n"
		"\n"
		"Exit status: 0 ok, 1 error, 2 usage, 3 no such process, 4 the\n"
		"process does not publish, 5 permission denied, 6 not a slab\n"
		"statistics file, 7 stale file (process exited), 8 no such cache.\n");
}

static int __attribute__((format(printf, 1, 2)))
usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n(slabinfo --help shows the options)\n", stderr);
	return RC_USAGE;
}

static int parse_interval(const char *arg, double *out)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(arg, &end);
	if (errno || end == arg || *end || !(d >= 0.01 && d <= 86400))
		return -1;
	*out = d;
	return 0;
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "pid", required_argument, NULL, 'p' },
		{ "file", required_argument, NULL, 'f' },
		{ "totals", no_argument, NULL, 'T' },
		{ "report", required_argument, NULL, 'r' },
		{ "list", no_argument, NULL, 'l' },
		{ "proc", no_argument, NULL, 'P' },
		{ "all", no_argument, NULL, 'a' },
		{ "sort", required_argument, NULL, 's' },
		{ "reverse", no_argument, NULL, 'i' },
		{ "watch", optional_argument, NULL, 'w' },
		{ "count", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, modes = 0;
	unsigned int k;
	char *end;
	long v;

	memset(o, 0, sizeof(*o));
	o->interval = 1.0;
	/* "+": stop at the first operand, so that -w can take the next word. */
	while ((c = getopt_long(argc, argv, "+p:f:Tr:lPas:Siwn:h", longopts,
				NULL)) != -1) {
		switch (c) {
		case 'p':
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || v <= 0 ||
			    v > INT_MAX)
				return usage_error("bad PID '%s'", optarg);
			o->pid = (int)v;
			break;
		case 'f':
			o->file = optarg;
			break;
		case 'T':
			o->mode = MODE_TOTALS;
			modes++;
			break;
		case 'r':
			o->mode = MODE_REPORT;
			o->report = optarg;
			modes++;
			break;
		case 'l':
			o->mode = MODE_NAMES;
			modes++;
			break;
		case 'P':
			o->mode = MODE_PROC;
			modes++;
			break;
		case 'a':
			o->all = 1;
			break;
		case 's':
			for (k = 0;
			     k < sizeof(sort_names) / sizeof(sort_names[0]);
			     k++)
				if (!strcmp(optarg, sort_names[k]))
					break;
			if (k == sizeof(sort_names) / sizeof(sort_names[0]))
				return usage_error(
					"unknown sort key '%s' (name, size, objects, space, slabs or cached)",
					optarg);
			o->sort = (enum sort_key)k;
			break;
		case 'S':
			o->sort = SORT_SPACE;
			break;
		case 'i':
			o->reverse = 1;
			break;
		case 'w':
			o->watch = 1;
			if (optarg) {
				if (parse_interval(optarg, &o->interval))
					return usage_error(
						"bad interval '%s' (seconds, 0.01 to 86400)",
						optarg);
			} else if (optind < argc &&
				   !parse_interval(argv[optind],
						   &o->interval)) {
				optind++;
			}
			break;
		case 'n':
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || v <= 0)
				return usage_error("bad count '%s'", optarg);
			o->count = v;
			o->watch = 1;
			break;
		case 'h':
			usage(stdout);
			exit(RC_OK);
		default:
			fputs("(slabinfo --help shows the options)\n", stderr);
			return RC_USAGE;
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (!o->pid == !o->file)
		return usage_error("%s",
				   o->pid ?
					   "-p and -f exclude each other" :
					   "which process? (-p PID, or -f FILE)");
	if (modes > 1)
		return usage_error("-T, -r, -l and -P exclude each other");
	return RC_OK;
}

int main(int argc, char **argv)
{
	static char prog_name[] = PROG;
	struct snapshot s = { 0 };
	struct options o;
	int rc;

	argv[0] = prog_name; /* for getopt's messages */
	rc = parse_options(argc, argv, &o);
	if (rc)
		return rc;
	if (o.watch)
		return watch(&o, &s);
	rc = load(&o, &s);
	if (rc)
		return rc;
	rc = show(&s, &o);
	free(s.f);
	if (fflush(stdout) || ferror(stdout)) {
		msg("write error: %s", strerror(errno));
		return RC_ERROR;
	}
	return rc;
}
