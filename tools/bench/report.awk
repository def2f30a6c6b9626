# SPDX-License-Identifier: MIT
# report.awk: the tables of build/bench/report.md, from the files that
# tools/bench/run.sh writes. Run by tools/bench/report.sh as
#
#   awk -f report.awk part=meta meta.txt part=configs configs.txt \
#       part=results results.tsv part=rss rss.tsv part=cg callgrind.tsv
#
# With plotdat=PREFIX, the ratio tables are also written to PREFIX.wall,
# PREFIX.cpu and PREFIX.rss for tools/bench/plot.sh (one line per
# benchmark, "?" where there is no value).
#
# Portable awk (mawk): no asort, no arrays of arrays.

BEGIN {
	FS = "\t"
	nbench = 0
	nconf = 0
}

# meta.txt: key=value lines; bench=, cap= and once= repeat.
part == "meta" {
	i = index($0, "=")
	k = substr($0, 1, i - 1)
	v = substr($0, i + 1)
	if (k == "bench") {
		j = index(v, "|")
		bname = substr(v, 1, j - 1)
		border[++nbench] = bname
		bcmd[bname] = substr(v, j + 1)
	} else if (k == "cap") {
		j = index(v, "|")
		capped[substr(v, 1, j - 1)] = substr(v, j + 1)
	} else if (k == "once") {
		single[v] = 1
	} else {
		meta[k] = v
	}
	next
}

# configs.txt: NAME STATE NOTE..., space separated.
part == "configs" {
	split($0, f, " ")
	c = f[1]
	corder[++nconf] = c
	cstate[c] = f[2]
	note = $0
	sub(/^[^ ]+ [^ ]+ ?/, "", note)
	cnote[c] = note
	next
}

part == "results" && FNR > 1 {
	k = $1 SUBSEP $2
	seen[$2] = 1
	n = ++cnt[k]
	sc = $9 + 0
	if (sc < 1)
		sc = 1
	scale[k] = sc
	wall[k, n] = $4 * sc
	cpu[k, n] = ($5 + $6) * sc
	mrss[k, n] = $7 / 1024
	if ($8 != "ok" && !(k in bad))
		bad[k] = $8
	next
}

part == "rss" && FNR > 1 {
	nrss++
	c = $1
	n = ++rcnt[c]
	rpeak[c, n] = $3 / 1024
	r1[c, n] = $3 > 0 ? 100 * $4 / $3 : 0
	rend[c, n] = $3 > 0 ? 100 * $5 / $3 : 0
	ralloc[c, n] = $6 / 1000
	rfree[c, n] = $7
	if ($8 != "ok")
		rbad[c] = $8
	next
}

part == "cg" && FNR > 1 {
	ncg++
	cgv[$1] = 1
	cgval[$1, $2] = ($8 == "ok") ? $7 : "FAIL"
	next
}

# median of a[k, 1..n]
function median(a, k, n, i, j, t, v) {
	for (i = 1; i <= n; i++)
		v[i] = a[k, i]
	for (i = 2; i <= n; i++) {
		t = v[i]
		for (j = i - 1; j >= 1 && v[j] > t; j--)
			v[j + 1] = v[j]
		v[j + 1] = t
	}
	if (n % 2)
		return v[(n + 1) / 2]
	return (v[n / 2] + v[n / 2 + 1]) / 2
}

function libc_of(c) {
	return substr(c, 1, index(c "+", "+") - 1)
}

function fmt_num(v) {
	if (v >= 100)
		return sprintf("%.0f", v)
	if (v >= 10)
		return sprintf("%.1f", v)
	if (v >= 1)
		return sprintf("%.2f", v)
	return sprintf("%.3f", v)
}

# value(metric, bench, config): the median, or "" (no data) or "FAIL...".
function value(m, b, c, k, n) {
	k = b SUBSEP c
	n = cnt[k]
	if (!n)
		return ""
	if (k in bad)
		return "FAIL"
	if (m == "wall")
		return median(wall, k, n)
	if (m == "cpu")
		return median(cpu, k, n)
	return median(mrss, k, n)
}

function mark(b, c) {
	if ((b "/" c) in capped)
		return "~"
	if ((b "/" c) in single)
		return "*"
	return ""
}

function header(first, i, s, d) {
	s = "| " first
	d = "| ---"
	for (i = 1; i <= ncol; i++) {
		s = s " | " col[i]
		d = d " | ---:"
	}
	print s " |"
	print d " |"
}

# One metric: the ratio table, its geometric means, then the medians.
function metric(m, title, unit, i, j, b, c, v, s, base, r, lg, ng, pd, pl) {
	if (plotdat != "") {
		pd = plotdat "." m
		pl = "benchmark"
		for (j = 1; j <= ncol; j++)
			pl = pl " " col[j]
		print pl > pd
	}
	print "### " title
	print ""
	print "Ratio to slab in the same libc (this configuration's median / " \
	      "slab's; above 1: slab is " (m == "rss" ? "smaller" : "faster") \
	      "):"
	print ""
	header("benchmark")
	for (j = 1; j <= ncol; j++) {
		lg[j] = 0
		ng[j] = 0
	}
	for (i = 1; i <= nbench; i++) {
		b = border[i]
		s = "| " b
		pl = b
		for (j = 1; j <= ncol; j++) {
			c = col[j]
			v = value(m, b, c)
			base = value(m, b, libc_of(c) "+slab")
			if (v == "FAIL") {
				s = s " | FAIL"
				pl = pl " ?"
			} else if (v == "" || base == "" || base == "FAIL" ||
				   base <= 0 || v <= 0) {
				s = s " | -"
				pl = pl " ?"
			} else {
				r = v / base
				s = s " | " mark(b, c) sprintf("%.2f", r)
				pl = pl " " sprintf("%.4f", r)
				lg[j] += log(r)
				ng[j]++
			}
		}
		print s " |"
		if (plotdat != "")
			print pl > pd
	}
	s = "| **geometric mean**"
	for (j = 1; j <= ncol; j++)
		s = s " | " (ng[j] ? sprintf("**%.2f**", exp(lg[j] / ng[j])) : "-")
	print s " |"
	print ""
	if (plotdat != "")
		close(pd)
	print "Median, " unit ":"
	print ""
	header("benchmark")
	for (i = 1; i <= nbench; i++) {
		b = border[i]
		s = "| " b
		for (j = 1; j <= ncol; j++) {
			c = col[j]
			v = value(m, b, c)
			if (v == "FAIL")
				s = s " | FAIL (" bad[b SUBSEP c] ")"
			else if (v == "")
				s = s " | -"
			else
				s = s " | " mark(b, c) fmt_num(v)
		}
		print s " |"
	}
	print ""
}

END {
	# Columns: the configurations that ran, in the build's order.
	ncol = 0
	for (i = 1; i <= nconf; i++)
		if (corder[i] in seen || corder[i] in rcnt || corder[i] in cgv)
			col[++ncol] = corder[i]

	print "## Time and memory per benchmark"
	print ""
	print "`~`: plain musl ran 1/N of the iterations and its time is " \
	      "multiplied by N (see Notes); `*`: a single run. `-`: no data " \
	      "(configuration skipped, or slab's own cell failed)."
	print ""
	if (nbench) {
		metric("wall", "Wall time", "seconds")
		metric("cpu", "CPU time (user + sys)", "seconds")
		metric("rss", "Peak RSS (maxrss of the process)", "MiB")
	}

	print "## RSS after a mass free (rss)"
	print ""
	printf "%s MiB in objects of 64..256 bytes allocated, written and " \
	       "freed; then 100 malloc/free pairs every 10 ms and an RSS " \
	       "sample (/proc/self/statm) every 100 ms for %s s. Median of " \
	       "%s run(s). RSS after the free is given as a %% of the peak " \
	       "(lower is better).%s\n\n", meta["rss_mib"], meta["rss_secs"],
	       meta["rss_runs"], meta["mode"] == "quick" ? " Quick mode " \
	       "runs four configurations at once (the samples are driven by " \
	       "the clock and the programs mostly sleep), so the alloc and " \
	       "free times are indicative only." : ""
	if (!nrss) {
		print "Not measured in this run (BENCH_ONLY)."
		print ""
	}
	print "| configuration | alloc (s) | free (ms) | peak RSS (MiB) | " \
	      "after 1 s (% of peak) | after " meta["rss_secs"] \
	      " s (% of peak) | peak / slab's |"
	print "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
	for (j = 1; j <= ncol; j++) {
		c = col[j]
		if (!(c in rcnt))
			continue
		if (c in rbad) {
			print "| " c " | FAIL (" rbad[c] ") | | | | | |"
			continue
		}
		n = rcnt[c]
		p = median(rpeak, c, n)
		base = libc_of(c) "+slab"
		rb = "-"
		if ((base in rcnt) && !(base in rbad) &&
		    median(rpeak, base, rcnt[base]) > 0)
			rb = sprintf("%.2f", p / median(rpeak, base, rcnt[base]))
		printf "| %s | %.2f | %.0f | %.0f | %.1f | %.1f | %s |\n", c,
		       median(ralloc, c, n), median(rfree, c, n), p,
		       median(r1, c, n), median(rend, c, n), rb
	}
	print ""

	print "## Instructions per malloc+free pair (callgrind)"
	print ""
	print "`fastpath` under `valgrind --tool=callgrind`, run with N and 2N " \
	      "iterations: (Ir(2N) - Ir(N)) / pairs in N, so start-up is " \
	      "removed; 9 instructions of each malloc(32) pair are the " \
	      "benchmark's own loop. " \
	      "valgrind does not support rseq, so plain runs of slab take its " \
	      "fallback (per-thread caches); `rseq=fake` runs slab's rseq code " \
	      "on a hand-filled rseq area (SLAB_OPTIONS=rseq=fake), which is " \
	      "what a real process runs."
	print ""
	if (!ncg) {
		print "Not measured in this run (valgrind is not installed, or " \
		      "BENCH_ONLY left it out)."
		print ""
	}
	print "| configuration | malloc(32) + free | 64 mixed sizes, per pair |"
	print "| --- | ---: | ---: |"
	for (j = 1; j <= ncol; j++) {
		c = col[j]
		for (fk = 0; fk <= 1; fk++) {
			v = fk ? c "@fake" : c
			if (!(v in cgv))
				continue
			name = fk ? c " (rseq=fake)" : c
			if (!fk && c ~ /\+slab$/)
				name = c " (fallback)"
			print "| " name " | " cgval[v, "32"] " | " \
			      cgval[v, "batch"] " |"
		}
	}
	print ""
}
