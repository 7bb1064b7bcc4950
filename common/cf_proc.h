/* SPDX-License-Identifier: MIT */
/* cf_proc.h - the process's own run-time helpers: the heap kept resident, children spawned. */
#ifndef CF_PROC_H
#define CF_PROC_H

#include <stddef.h>

/*
 * For the programs (cfserver, cfnode), never the library: memory malloc got
 * back stays with the process (no trim of the heap's top below 256 MiB, no
 * mmap for blocks below 16 MiB), so a buffer freed and allocated again is
 * resident. Otherwise the failover path (a recovery's scan, the CF's
 * answers) meets fresh pages, and a page fault costs 10 us on a slow VM.
 * warm bytes (below 16 MiB) of the calling thread's heap are written and
 * given back, so that its first allocations of that much are resident too:
 * cfnode's main thread runs the agent, whose first recovery allocated 20-25
 * fresh pages (its scan, the release) in each failover of the benchmark.
 */
void cf_malloc_keep(size_t warm);

/*
 * Start program path (argv) as a child, never by fork(): a fork of a process
 * with threads and large buffers copies its page tables and write-protects
 * every private page it has, so that each first write afterwards (in the
 * parent, for as long as the child lives) is a copy-on-write fault with a TLB
 * shootdown of the other CPUs. posix_spawn shares the address space until the
 * exec. The child's fd i is fds[i] for each i < nfds with fds[i] >= 0
 * (sources below nfds are moved out of the way first); every other fd with
 * FD_CLOEXEC is closed by the exec. It starts with an empty signal mask and
 * SIGPIPE, SIGINT, SIGTERM at their defaults, whatever the caller set.
 * 0 with *pid, or -errno (an exec's failure too: glibc reports it here).
 */
int cf_spawn(const char *path, char *const argv[], const int *fds, int nfds, int *pid);

#endif
