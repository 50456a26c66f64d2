/*
 * workload: a fixed script of calls of the mlock family (mlock, mlock2,
 * munlock, mlockall, munlockall) whose every argument and result is known
 * in advance, so tests of the tracer can compare what the kernel reported
 * against what was really done.
 *
 * Build:  gcc -O2 -Wall -Wextra -Werror -pthread -o workload workload.c
 * Usage:  workload [--repeat N] [--for-ms N] [--sleep-ms N] [--pause-ms N]
 *                  [--hold-ms N]
 *         workload --noise-ms N
 *         workload --once N
 *         workload --flood N
 *
 *   --repeat N     run the whole script N times (default 1, or no limit
 *                  with --for-ms)
 *   --for-ms N     run the whole script again and again until N
 *                  milliseconds have passed since the first run began: the
 *                  last run starts before then and is finished, so there is
 *                  at least one.  With --repeat too, whichever limit comes
 *                  first ends the runs.  With --pause-ms, the calls come at
 *                  a steady rate for a known time, however long a run takes
 *   --sleep-ms N   sleep N milliseconds before the first call (default 0), so
 *                  a tracer can be told the pid before anything happens
 *   --pause-ms N   sleep N milliseconds between two runs of the script
 *                  (default 0), so that --repeat makes its calls at a
 *                  steady rate over a long time rather than all at once
 *   --hold-ms N    after the last repetition, map HOLD_PAGES (64) pages and
 *                  mlock them (step hold_mlock, printed like every call),
 *                  then print nothing more and sleep N milliseconds before
 *                  exiting with the pages still locked, so that a test can
 *                  read /proc/<pid>/status (VmLck) and /proc/<pid>/limits
 *                  meanwhile.  Without the option there is no such step.
 *   --noise-ms N   run no script: be another process on the host that calls
 *                  mlock2, for tests that must see only their own
 *                  workload.  Every N milliseconds (1 to 1000), one round:
 *                  mlock2(buf, 4096, 0) and munlock of it, then
 *                  mlock2(buf, 4096, MLOCK_ONFAULT) and munlock, then
 *                  mlock2(buf, 4096, 2), which fails with EINVAL; all raw
 *                  syscalls.  It prints nothing on stdout and runs until
 *                  SIGTERM or SIGINT (then it prints the number of rounds
 *                  on stderr and exits 0) or until its parent exits
 *                  (unless the parent exits before the noise starts).  It
 *                  takes no other option.
 *   --once N       run no script: make one call, step once_mlock2, a raw
 *                  syscall(mlock2, buf, 4096, 0), undo it (step
 *                  once_mlock2_munlock), then linger N milliseconds (0:
 *                  exit at once, within a millisecond of starting: the
 *                  short-lived process a container's entrypoint or a CLI
 *                  tool is).  It takes no other option.
 *   --flood N      run no script: make N (1 to 4294967295) identical raw
 *                  calls syscall(mlock2, buf, 4096, 0xdead) from the main
 *                  thread, one right after the other, as fast as it can:
 *                  unknown flag bits, so the kernel refuses each at once
 *                  with EINVAL.  Then print one line, step
 *                  flood_mlock2_bad_flags, standing for all of them (its
 *                  "count" is N).  It takes no other option.
 *
 * Every call of the family the program makes is printed as one JSON object
 * on its own line on stdout, in the order the calls were made (per thread),
 * as soon as the step that made it is done.  The format is parsed by
 * internal/testutil/workload.go:
 *
 *   step     name of the script step; the munlock or munlockall that undoes
 *            a successful lock is its own step, named after the lock's step
 *            with "_munlock" or "_munlockall" appended
 *   pid, tid, ppid, uid, euid, gid, egid, comm
 *            identity of the calling thread at the time of the call
 *   syscall  the syscall the kernel sees: "mlock", "mlock2", "munlock",
 *            "mlockall" or "munlockall"
 *   libc     what user space called: "mlock", "mlock2", "munlock",
 *            "mlockall", "munlockall", or "syscall" (raw)
 *   addr, len, flags
 *            the arguments exactly as passed to the kernel, in decimal;
 *            0 for those the call does not take (mlockall has only flags,
 *            munlockall none, mlock and munlock no flags)
 *   ret      what the kernel returned: 0 or -errno
 *   expect   what the script expects ret to be
 *   count    only on a line that stands for several identical calls
 *            (--flood): how many; a line without it is one call.  ret is
 *            then what every one of them returned, or, if some returned
 *            something else, the first such return
 *
 * One run of the script, in order (tid: m = main thread, t = a second
 * thread, c1 and c2 = two forked children):
 *
 *   m  libc_mlock2_zero                 mlock2(buf, 4096, 0) -> mlock syscall
 *   m  libc_mlock2_zero_munlock         munlock(buf, 4096)
 *   m  raw_mlock2_zero                  syscall(mlock2, buf, 4096, 0)
 *   m  raw_mlock2_zero_munlock
 *   m  libc_mlock                       mlock(buf, 8192)
 *   m  libc_mlock_munlock
 *   m  libc_mlock2_onfault              mlock2(buf, 4096, MLOCK_ONFAULT)
 *   m  libc_mlock2_onfault_munlock
 *   m  raw_mlock2_bad_flag              syscall(mlock2, buf, 4096, 2): EINVAL
 *   m  libc_mlock_unmapped              mlock(hole, 8192): ENOMEM
 *   m  libc_munlock_unmapped            munlock(hole, 8192): ENOMEM
 *   m  libc_mlock2_unaligned            mlock2(buf + 4000, 200, MLOCK_ONFAULT)
 *   m  libc_mlock2_unaligned_munlock
 *   m  libc_mlockall_<flags>            mlockall(flags), for each valid
 *   m  libc_mlockall_<flags>_munlockall combination, in this order: current,
 *                                       future, current_future,
 *                                       current_onfault, future_onfault,
 *                                       current_future_onfault
 *   m  libc_mlockall_zero               mlockall(0): EINVAL
 *   m  libc_mlockall_onfault_only       mlockall(MCL_ONFAULT): EINVAL
 *   m  libc_mlockall_bad_flag           mlockall(8): EINVAL
 *   t  thread_raw_mlock2_onfault        syscall(mlock2, buf, 4096, 1)
 *   t  thread_raw_mlock2_onfault_munlock
 *   c1 child_mlock_over_limit           mlock(1 MiB) under a 64 KiB limit: ENOMEM
 *   c2 child_mlock_zero_limit           mlock(buf, 4096) under limit 0: EPERM
 *   c2 child_mlockall_zero_limit        mlockall(MCL_CURRENT) under limit 0: EPERM
 *
 * Each mlockall is undone by munlockall before anything else happens (even
 * before its line is printed), so no lock and no MCL_FUTURE outlives its
 * step: later mappings, the thread's stack and the children start unlocked.
 *
 * Steps that need root are skipped as another user, with a note on stderr:
 * the children, which drop to nobody (65534), and the mlockall steps with
 * MCL_CURRENT, which lock the whole address space and so could exceed an
 * unprivileged RLIMIT_MEMLOCK.  Diagnostics go to stderr only.  The exit
 * status is 1 if any call returned something other than expected (reported
 * after all lines were printed) or if the script could not be carried out,
 * 2 on bad usage, 0 otherwise.
 */

#define _GNU_SOURCE

#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The lengths in the script assume 4 KiB pages, as on x86-64. */
#define PAGE 4096UL

/* The buffer every step shares: step c locks two pages, step g crosses
 * from the first page into the second. */
#define BUF_LEN (4 * PAGE)

/* mlock2 knows a single flag, MLOCK_ONFAULT (1); the next bit is unused, so
 * the kernel must refuse it with EINVAL. */
#define MLOCK_BAD_FLAG 2U

/* The user and group "nobody": unprivileged, and without CAP_IPC_LOCK,
 * so RLIMIT_MEMLOCK applies to it. */
#define NOBODY 65534

/* RLIMIT_MEMLOCK of the child in step i, far below its 1 MiB request. */
#define SMALL_MEMLOCK_LIMIT (64UL * 1024)
#define BIG_LEN (1024UL * 1024)

/* mlockall knows MCL_CURRENT (1), MCL_FUTURE (2) and MCL_ONFAULT (4); the
 * next bit is unused, so the kernel must refuse it with EINVAL. */
#define MCL_BAD_FLAG 8

/* What --hold-ms locks and keeps locked until the program exits. */
#define HOLD_PAGES 64UL

/* The flags of every --flood call: MLOCK_ONFAULT with unknown bits around
 * it, which the kernel refuses with EINVAL before looking at memory. */
#define FLOOD_FLAGS 0xdeadU

/* One traced call as it is printed. */
struct call {
	const char *step;
	const char *syscall; /* seen by the kernel */
	const char *libc;    /* called in user space */
	uintptr_t addr;
	size_t len;
	unsigned int flags;
	long ret;
	long expect;
};

/* Calls whose result differed from the script, in this process. */
static unsigned int mismatches;

/* Turns the libc convention (-1 and errno) into the kernel's (-errno).  Must
 * be called right after the call, before anything else can clobber errno. */
static long kernel_ret(long r)
{
	return r == -1 ? -(long)errno : r;
}

/* Writes s as a JSON string.  comm is normally tame, but a binary or thread
 * can be named anything, and one bad byte must not break the test's parser. */
static void print_json_string(const char *s)
{
	putchar('"');
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			/* Bytes >= 0x7f may not be valid UTF-8; escaping
			 * them keeps the line valid JSON whatever they are. */
			printf("\\u%04x", *p);
		else
			putchar(*p);
	}
	putchar('"');
}

/* Prints c as one JSON line with the caller's identity, read now, and counts
 * it if the kernel's answer was not the expected one.  A line that stands
 * for count identical calls carries their number; count 0 is one call, whose
 * line has no "count" key. */
static void report_calls(const struct call *c, unsigned long count)
{
	/* PR_GET_NAME fills at most 16 bytes, NUL included. */
	char comm[17] = {0};

	if (prctl(PR_GET_NAME, comm, 0, 0, 0) != 0)
		strcpy(comm, "?");

	printf("{\"step\":\"%s\",\"pid\":%d,\"tid\":%ld,\"ppid\":%d,"
	       "\"uid\":%u,\"euid\":%u,\"gid\":%u,\"egid\":%u,\"comm\":",
	       c->step, (int)getpid(), syscall(SYS_gettid), (int)getppid(),
	       (unsigned int)getuid(), (unsigned int)geteuid(),
	       (unsigned int)getgid(), (unsigned int)getegid());
	print_json_string(comm);
	printf(",\"syscall\":\"%s\",\"libc\":\"%s\",\"addr\":%" PRIuPTR
	       ",\"len\":%zu,\"flags\":%u,\"ret\":%ld,\"expect\":%ld",
	       c->syscall, c->libc, c->addr, c->len, c->flags, c->ret,
	       c->expect);
	if (count != 0)
		printf(",\"count\":%lu", count);
	printf("}\n");

	if (c->ret != c->expect) {
		fprintf(stderr,
			"workload: step %s: kernel returned %ld, expected %ld\n",
			c->step, c->ret, c->expect);
		mismatches++;
	}
}

/* Prints the line of one call: report_calls. */
static void report(const struct call *c)
{
	report_calls(c, 0);
}

/* Undoes a lock with munlock, reported as the step named step, so the next
 * step, and the next repetition, starts from unlocked memory.  Only called
 * after a successful lock. */
static void unlock(const char *step, const void *addr, size_t len)
{
	long ret = kernel_ret(munlock(addr, len));

	report(&(struct call){step, "munlock", "munlock", (uintptr_t)addr, len,
			      0, ret, 0});
}

static void *map(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("workload: mmap");
		exit(1);
	}
	return p;
}

/* a) glibc implements mlock2(addr, len, 0) with the mlock syscall (it only
 * needs mlock2 for flags), so this is a libc mlock2 call that the kernel
 * sees as mlock: the case a tracer watching only mlock2 would miss. */
static void step_libc_mlock2_zero(char *buf)
{
	long ret = kernel_ret(mlock2(buf, PAGE, 0));

	report(&(struct call){"libc_mlock2_zero", "mlock", "mlock2",
			      (uintptr_t)buf, PAGE, 0, ret, 0});
	if (ret == 0)
		unlock("libc_mlock2_zero_munlock", buf, PAGE);
}

/* b) The same request, issued as the real mlock2 syscall. */
static void step_raw_mlock2_zero(char *buf)
{
	long ret = kernel_ret(syscall(SYS_mlock2, buf, PAGE, 0U));

	report(&(struct call){"raw_mlock2_zero", "mlock2", "syscall",
			      (uintptr_t)buf, PAGE, 0, ret, 0});
	if (ret == 0)
		unlock("raw_mlock2_zero_munlock", buf, PAGE);
}

/* c) Plain mlock over two pages. */
static void step_libc_mlock(char *buf)
{
	long ret = kernel_ret(mlock(buf, 2 * PAGE));

	report(&(struct call){"libc_mlock", "mlock", "mlock", (uintptr_t)buf,
			      2 * PAGE, 0, ret, 0});
	if (ret == 0)
		unlock("libc_mlock_munlock", buf, 2 * PAGE);
}

/* d) With a flag, glibc has to use the mlock2 syscall. */
static void step_libc_mlock2_onfault(char *buf)
{
	long ret = kernel_ret(mlock2(buf, PAGE, MLOCK_ONFAULT));

	report(&(struct call){"libc_mlock2_onfault", "mlock2", "mlock2",
			      (uintptr_t)buf, PAGE, MLOCK_ONFAULT, ret, 0});
	if (ret == 0)
		unlock("libc_mlock2_onfault_munlock", buf, PAGE);
}

/* e) An unknown flag fails in the syscall itself, before any memory is
 * looked at.  Raw, so that no libc can second-guess the flag. */
static void step_raw_mlock2_bad_flag(char *buf)
{
	long ret = kernel_ret(syscall(SYS_mlock2, buf, PAGE, MLOCK_BAD_FLAG));

	report(&(struct call){"raw_mlock2_bad_flag", "mlock2", "syscall",
			      (uintptr_t)buf, PAGE, MLOCK_BAD_FLAG, ret,
			      -EINVAL});
	if (ret == 0)
		unlock("raw_mlock2_bad_flag_munlock", buf, PAGE);
}

/* Returns the address of len bytes with no mapping behind them, known to be
 * free because they were just mapped and unmapped. */
static char *unmapped_hole(size_t len)
{
	char *hole = map(len);

	if (munmap(hole, len) != 0) {
		perror("workload: munmap");
		exit(1);
	}
	return hole;
}

/* f) A range with no mapping behind it: ENOMEM although no limit is hit,
 * which is why a tracer cannot read ENOMEM as "over RLIMIT_MEMLOCK". */
static void step_libc_mlock_unmapped(void)
{
	char *hole = unmapped_hole(2 * PAGE);
	long ret = kernel_ret(mlock(hole, 2 * PAGE));

	report(&(struct call){"libc_mlock_unmapped", "mlock", "mlock",
			      (uintptr_t)hole, 2 * PAGE, 0, ret, -ENOMEM});
	if (ret == 0)
		unlock("libc_mlock_unmapped_munlock", hole, 2 * PAGE);
}

/* f2) munlock fails the same way on a range with no mapping behind it. */
static void step_libc_munlock_unmapped(void)
{
	char *hole = unmapped_hole(2 * PAGE);
	long ret = kernel_ret(munlock(hole, 2 * PAGE));

	report(&(struct call){"libc_munlock_unmapped", "munlock", "munlock",
			      (uintptr_t)hole, 2 * PAGE, 0, ret, -ENOMEM});
}

/* g) 200 bytes from offset 4000 span two pages: the kernel locks whole pages
 * from the start of the first to the end of the last, 8192 bytes. */
static void step_libc_mlock2_unaligned(char *buf)
{
	char *addr = buf + 4000;
	long ret = kernel_ret(mlock2(addr, 200, MLOCK_ONFAULT));

	report(&(struct call){"libc_mlock2_unaligned", "mlock2", "mlock2",
			      (uintptr_t)addr, 200, MLOCK_ONFAULT, ret, 0});
	if (ret == 0)
		unlock("libc_mlock2_unaligned_munlock", addr, 200);
}

/* One mlockall call of the script: its step name, the step name of the
 * munlockall that undoes it, its flags and the result it must have. */
struct lockall {
	const char *step;
	const char *undo_step;
	int flags;
	long expect;
};

/* g2) Every valid combination of mlockall's flags (MCL_ONFAULT alone is not
 * one), in a fixed order. */
static const struct lockall valid_lockalls[] = {
	{"libc_mlockall_current", "libc_mlockall_current_munlockall",
	 MCL_CURRENT, 0},
	{"libc_mlockall_future", "libc_mlockall_future_munlockall",
	 MCL_FUTURE, 0},
	{"libc_mlockall_current_future",
	 "libc_mlockall_current_future_munlockall", MCL_CURRENT | MCL_FUTURE, 0},
	{"libc_mlockall_current_onfault",
	 "libc_mlockall_current_onfault_munlockall",
	 MCL_CURRENT | MCL_ONFAULT, 0},
	{"libc_mlockall_future_onfault",
	 "libc_mlockall_future_onfault_munlockall", MCL_FUTURE | MCL_ONFAULT, 0},
	{"libc_mlockall_current_future_onfault",
	 "libc_mlockall_current_future_onfault_munlockall",
	 MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT, 0},
};

/* g3) The kernel refuses flags 0, MCL_ONFAULT without MCL_CURRENT or
 * MCL_FUTURE, and any unknown bit, with EINVAL, before it looks at
 * anything else. */
static const struct lockall invalid_lockalls[] = {
	{"libc_mlockall_zero", "libc_mlockall_zero_munlockall", 0, -EINVAL},
	{"libc_mlockall_onfault_only", "libc_mlockall_onfault_only_munlockall",
	 MCL_ONFAULT, -EINVAL},
	{"libc_mlockall_bad_flag", "libc_mlockall_bad_flag_munlockall",
	 MCL_BAD_FLAG, -EINVAL},
};

/* Calls mlockall as l says and, if it locked anything, undoes it with
 * munlockall at once, before the lines are printed: with MCL_FUTURE in
 * force, even the memory stdio allocates would be locked, and later steps
 * must start from a process with no lock and no MCL_FUTURE. */
static void step_lockall(const struct lockall *l)
{
	long ret = kernel_ret(mlockall(l->flags));
	long undo = ret == 0 ? kernel_ret(munlockall()) : 0;

	report(&(struct call){l->step, "mlockall", "mlockall", 0, 0,
			      (unsigned int)l->flags, ret, l->expect});
	if (ret == 0)
		report(&(struct call){l->undo_step, "munlockall", "munlockall",
				      0, 0, 0, undo, 0});
}

/* h) A call from a second thread, so that tid != pid and the thread's own
 * name, not the process's, is what the kernel reports as comm. */
static void *thread_main(void *arg)
{
	char *buf = arg;

	if (prctl(PR_SET_NAME, "wl-thread", 0, 0, 0) != 0)
		perror("workload: prctl(PR_SET_NAME)");

	long ret = kernel_ret(syscall(SYS_mlock2, buf, PAGE, MLOCK_ONFAULT));

	report(&(struct call){"thread_raw_mlock2_onfault", "mlock2", "syscall",
			      (uintptr_t)buf, PAGE, MLOCK_ONFAULT, ret, 0});
	if (ret == 0)
		unlock("thread_raw_mlock2_onfault_munlock", buf, PAGE);
	return NULL;
}

static void step_thread(char *buf)
{
	pthread_t t;
	int err = pthread_create(&t, NULL, thread_main, buf);

	if (err != 0) {
		fprintf(stderr, "workload: pthread_create: %s\n",
			strerror(err));
		exit(1);
	}
	/* Joining also makes the thread's update of mismatches visible here. */
	err = pthread_join(t, NULL);
	if (err != 0) {
		fprintf(stderr, "workload: pthread_join: %s\n", strerror(err));
		exit(1);
	}
}

/* Sets RLIMIT_MEMLOCK and becomes nobody, in this order because lowering
 * limits is always allowed while changing ids needs root.  Groups go first:
 * once the uid is nobody, setgroups and setgid are no longer permitted. */
static void drop_to_nobody(rlim_t memlock_limit)
{
	struct rlimit rl = {memlock_limit, memlock_limit};

	if (setrlimit(RLIMIT_MEMLOCK, &rl) != 0 || setgroups(0, NULL) != 0 ||
	    setgid(NOBODY) != 0 || setuid(NOBODY) != 0) {
		perror("workload: dropping to nobody");
		fflush(stdout);
		_exit(1);
	}
}

/* Runs child_main in a forked child and waits for it.  The child prints its
 * own line; its exit status tells whether the call went as expected. */
static void in_child(const char *step, void (*child_main)(void *), void *arg)
{
	/* Anything still buffered would otherwise be printed twice. */
	fflush(stdout);

	pid_t pid = fork();

	if (pid < 0) {
		perror("workload: fork");
		exit(1);
	}
	if (pid == 0) {
		child_main(arg);
		fflush(stdout);
		/* _exit: the parent's atexit handlers and stdio are its own. */
		_exit(mismatches == 0 ? 0 : 1);
	}

	int status;

	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			perror("workload: waitpid");
			exit(1);
		}
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "workload: step %s: child failed (status %#x)\n",
			step, (unsigned int)status);
		mismatches++;
	}
}

/* i) Over RLIMIT_MEMLOCK: 1 MiB against a 64 KiB limit is ENOMEM, the
 * failure operators most want to see. */
static void child_over_limit(void *unused)
{
	(void)unused;
	drop_to_nobody(SMALL_MEMLOCK_LIMIT);

	char *big = map(BIG_LEN);
	long ret = kernel_ret(mlock(big, BIG_LEN));

	report(&(struct call){"child_mlock_over_limit", "mlock", "mlock",
			      (uintptr_t)big, BIG_LEN, 0, ret, -ENOMEM});
}

/* j) With RLIMIT_MEMLOCK 0 and no CAP_IPC_LOCK, mlock is refused outright
 * with EPERM, whatever the size. */
static void child_no_limit(void *arg)
{
	char *buf = arg;

	drop_to_nobody(0);

	long ret = kernel_ret(mlock(buf, PAGE));

	report(&(struct call){"child_mlock_zero_limit", "mlock", "mlock",
			      (uintptr_t)buf, PAGE, 0, ret, -EPERM});

	/* mlockall is refused the same way, after its flags are checked. */
	step_lockall(&(struct lockall){"child_mlockall_zero_limit",
				       "child_mlockall_zero_limit_munlockall",
				       MCL_CURRENT, -EPERM});
}

static void run_script(int privileged)
{
	char *buf = map(BUF_LEN);

	step_libc_mlock2_zero(buf);
	step_raw_mlock2_zero(buf);
	step_libc_mlock(buf);
	step_libc_mlock2_onfault(buf);
	step_raw_mlock2_bad_flag(buf);
	step_libc_mlock_unmapped();
	step_libc_munlock_unmapped();
	step_libc_mlock2_unaligned(buf);
	for (size_t i = 0; i < sizeof(valid_lockalls) / sizeof(valid_lockalls[0]); i++) {
		/* Locking everything mapped could exceed an unprivileged
		 * RLIMIT_MEMLOCK, whose value we do not know. */
		if (privileged || !(valid_lockalls[i].flags & MCL_CURRENT))
			step_lockall(&valid_lockalls[i]);
	}
	for (size_t i = 0; i < sizeof(invalid_lockalls) / sizeof(invalid_lockalls[0]); i++)
		step_lockall(&invalid_lockalls[i]);
	step_thread(buf);
	if (privileged) {
		in_child("child_mlock_over_limit", child_over_limit, NULL);
		in_child("child_mlock_zero_limit", child_no_limit, buf);
	}

	if (munmap(buf, BUF_LEN) != 0)
		perror("workload: munmap");
}

/* Set by SIGTERM and SIGINT: --noise-ms finishes its round and exits. */
static volatile sig_atomic_t stop_noise;

static void on_stop_signal(int sig)
{
	(void)sig;
	stop_noise = 1;
}

static void sleep_ms(unsigned long ms);

/* --noise-ms: calls of the mlock family that no test's script knows of,
 * every ms milliseconds, until a stop signal or the parent's exit (a test
 * killed without its clean-ups, a Makefile recipe interrupted).  Raw
 * syscalls, so every libc issues the same ones.  Returns the exit status. */
static int noise(unsigned long ms)
{
	struct sigaction sa;
	pid_t parent = getppid();
	char *buf = map(PAGE);
	unsigned long rounds = 0, unexpected = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) != 0 ||
	    sigaction(SIGINT, &sa, NULL) != 0) {
		perror("workload: sigaction");
		return 1;
	}
	/* The parent's exit stops the noise like SIGTERM; if the parent was
	 * gone before this call, the loop below sees getppid() change. */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) != 0) {
		perror("workload: prctl(PR_SET_PDEATHSIG)");
		return 1;
	}
	while (!stop_noise && getppid() == parent) {
		if (syscall(SYS_mlock2, buf, PAGE, 0U) == 0)
			munlock(buf, PAGE);
		else
			unexpected++;
		if (syscall(SYS_mlock2, buf, PAGE, (unsigned int)MLOCK_ONFAULT) == 0)
			munlock(buf, PAGE);
		else
			unexpected++;
		if (syscall(SYS_mlock2, buf, PAGE, MLOCK_BAD_FLAG) != -1 ||
		    errno != EINVAL)
			unexpected++;
		rounds++;
		sleep_ms(ms);
	}
	fprintf(stderr, "workload: noise: %lu rounds, %lu unexpected results\n",
		rounds, unexpected);
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: workload [--repeat N] [--for-ms N] [--sleep-ms N] [--pause-ms N] [--hold-ms N]\n"
			"       workload --noise-ms N\n"
			"       workload --once N\n"
			"       workload --flood N\n");
	exit(2);
}

/* Parses a whole decimal number in [min, max]; anything else is bad usage. */
static unsigned long parse_number(const char *opt, const char *s,
				  unsigned long min, unsigned long max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0 ||
	    v < min || v > max) {
		fprintf(stderr, "workload: %s: want a number from %lu to %lu, got %s\n",
			opt, min, max, s);
		usage();
	}
	return v;
}

/* Milliseconds on the monotonic clock. */
static unsigned long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000 + (unsigned long long)ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned long ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* --hold-ms: locks HOLD_PAGES fresh pages, reports it, and keeps them
 * locked for ms milliseconds.  Nothing is printed after its line, and the
 * pages stay locked until the process exits. */
static void hold(unsigned long ms)
{
	char *pages = map(HOLD_PAGES * PAGE);
	long ret = kernel_ret(mlock(pages, HOLD_PAGES * PAGE));

	report(&(struct call){"hold_mlock", "mlock", "mlock", (uintptr_t)pages,
			      HOLD_PAGES * PAGE, 0, ret, 0});
	fflush(stdout);
	sleep_ms(ms);
}

/* --once: one lock and its undoing, reported, then ms of idling. */
static int once(unsigned long ms)
{
	char *buf = map(PAGE);

	report(&(struct call){"once_mlock2", "mlock2", "syscall", (uintptr_t)buf, PAGE, 0,
			      kernel_ret(syscall(SYS_mlock2, buf, PAGE, 0U)), 0});
	unlock("once_mlock2_munlock", buf, PAGE);
	fflush(stdout);
	sleep_ms(ms);
	return mismatches != 0;
}

/* --flood: n identical calls that fail at once, flat out, then one line
 * for all of them.  Nothing else happens between two calls, so that the
 * rate is what a runaway caller could reach. */
static int flood(unsigned long n)
{
	char *buf = map(PAGE);
	unsigned long other = 0;
	long first_other = 0;

	for (unsigned long i = 0; i < n; i++) {
		long ret = kernel_ret(syscall(SYS_mlock2, buf, PAGE, FLOOD_FLAGS));

		if (ret != -EINVAL && other++ == 0)
			first_other = ret;
	}
	if (other != 0)
		fprintf(stderr, "workload: flood: %lu of %lu calls did not fail with EINVAL\n",
			other, n);
	report_calls(&(struct call){"flood_mlock2_bad_flags", "mlock2", "syscall",
				    (uintptr_t)buf, PAGE, FLOOD_FLAGS,
				    other != 0 ? first_other : -EINVAL, -EINVAL},
		     n);
	fflush(stdout);
	return mismatches != 0;
}

int main(int argc, char **argv)
{
	unsigned long repeat = 1, delay_ms = 0, pause_ms = 0, hold_ms = 0,
		      noise_ms = 0, once_ms = 0, flood_calls = 0, for_ms = 0;
	int holding = 0, only_once = 0, repeat_set = 0, timed = 0;

	/* Every option takes a value, so arguments come in pairs. */
	for (int i = 1; i < argc; i += 2) {
		if (i + 1 >= argc)
			usage();
		if (strcmp(argv[i], "--repeat") == 0) {
			repeat = parse_number(argv[i], argv[i + 1], 1, INT_MAX);
			repeat_set = 1;
		} else if (strcmp(argv[i], "--for-ms") == 0) {
			for_ms = parse_number(argv[i], argv[i + 1], 0,
					      86400000UL);
			timed = 1;
		} else if (strcmp(argv[i], "--sleep-ms") == 0)
			delay_ms = parse_number(argv[i], argv[i + 1], 0,
						86400000UL);
		else if (strcmp(argv[i], "--pause-ms") == 0)
			pause_ms = parse_number(argv[i], argv[i + 1], 0,
						86400000UL);
		else if (strcmp(argv[i], "--hold-ms") == 0) {
			hold_ms = parse_number(argv[i], argv[i + 1], 0,
					       86400000UL);
			holding = 1;
		} else if (strcmp(argv[i], "--noise-ms") == 0 && argc == 3)
			noise_ms = parse_number(argv[i], argv[i + 1], 1, 1000);
		else if (strcmp(argv[i], "--once") == 0 && argc == 3) {
			once_ms = parse_number(argv[i], argv[i + 1], 0, 86400000UL);
			only_once = 1;
		} else if (strcmp(argv[i], "--flood") == 0 && argc == 3)
			flood_calls = parse_number(argv[i], argv[i + 1], 1,
						   4294967295UL);
		else
			usage();
	}
	if (noise_ms != 0)
		return noise(noise_ms);
	if (only_once)
		return once(once_ms);
	if (flood_calls != 0)
		return flood(flood_calls);

	/* A reader of a pipe (a test, a tracer harness) sees each call as soon
	 * as it is made, not when a block buffer fills. */
	setvbuf(stdout, NULL, _IOLBF, 0);

	int privileged = geteuid() == 0;

	if (!privileged)
		fprintf(stderr, "workload: not root: skipping steps "
				"child_mlock_over_limit, child_mlock_zero_limit and "
				"child_mlockall_zero_limit, which drop to nobody, and "
				"the libc_mlockall steps with MCL_CURRENT, which could "
				"exceed RLIMIT_MEMLOCK\n");

	sleep_ms(delay_ms);

	if (timed && !repeat_set)
		repeat = ULONG_MAX;

	unsigned long long began = now_ms();

	for (unsigned long i = 0; i < repeat; i++) {
		if (i > 0) {
			sleep_ms(pause_ms);
			if (timed && now_ms() - began >= for_ms)
				break;
		}
		run_script(privileged);
	}
	if (holding)
		hold(hold_ms);

	fflush(stdout);
	if (mismatches != 0) {
		fprintf(stderr, "workload: %u call(s) did not return what was expected\n",
			mismatches);
		return 1;
	}
	return 0;
}
