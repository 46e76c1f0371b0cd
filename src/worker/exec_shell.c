/*
 * exec_shell.c - shell targets: /bin/sh -c COMMAND as a child of the
 * executor thread, in a process group of its own.
 *
 * A run's life (exec_internal.h, shell_state):
 *   spawn -> RUNNING --timeout/cancel--> TERMINATING (SIGTERM to the group)
 *         --grace--> KILLED (SIGKILL to the group) --exit--> reaped;
 *   once the leader is reaped the run ends when its output pipe reaches
 *   EOF, or after DRAIN_US in DRAINING if something outside the group
 *   still holds the pipe.
 *
 * Why these choices:
 *   - posix_spawn, not fork: glibc spawns with CLONE_VM|CLONE_VFORK, so a
 *     large worker does not copy its page tables per run, and exec errors
 *     come back as the return value.
 *   - The child gets an empty signal mask and default dispositions: the
 *     server blocks SIGINT/SIGTERM in every thread and may ignore SIGPIPE,
 *     and both survive exec; a job must see the world a shell would.
 *   - A pidfd per child tells epoll when it exits, without SIGCHLD (which a
 *     library cannot own) and without waitpid(-1) (which would steal other
 *     code's children).  If pidfd_open fails (old kernel, no fds left) the
 *     child is polled with waitid(WNOHANG) every POLL_US instead.
 *   - When the leader exits, whatever is left of its group is SIGKILLed
 *     before the leader is reaped.  A run is its process group: leftovers
 *     (`daemon &`) would escape timeouts, cancels and accounting, and would
 *     hold the output pipe open so the run could never end.  While the
 *     leader is an unreaped zombie its pid (= the group id) cannot be
 *     reused, so kill(-pgid) cannot reach a stranger; that is why we
 *     signal first and reap second, and never signal a reaped group.  A
 *     job that really wants to leave something behind must setsid() it.
 *   - Our fds are O_CLOEXEC so children spawned concurrently by other
 *     threads never inherit another run's pipe, and the child closes all
 *     fds above its own anyway: libraries (libcurl's wakeup socketpair)
 *     open some without O_CLOEXEC, and a job has no use for them.
 *
 * Not here: the event loop and deadline heap (exec.c).
 */
#include "worker/exec_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "time/rfc3339.h"

extern char **environ;

#define DRAIN_US (1 * SKED_USEC_PER_SEC) /* output after the leader's exit */
#define READ_ROUNDS 16 /* 64 KiB reads per wake-up before yielding to others */

static const char *const reserved[] = {"SKED_TASK_ID", "SKED_RUN_ID",
                                       "SKED_SCHEDULED_AT", "SKED_ATTEMPT"};

/* Do "K=V" entries a and b name the same variable? */
static int same_key(const char *a, const char *b)
{
    while (*a && *a != '=' && *a == *b)
        a++, b++;
    return (*a == '=' || *a == '\0') && (*b == '=' || *b == '\0');
}

static int is_reserved(const char *kv)
{
    for (size_t i = 0; i < sizeof reserved / sizeof *reserved; i++)
        if (same_key(kv, reserved[i]))
            return 1;
    return 0;
}

static int in_list(char *const *list, const char *kv)
{
    for (size_t i = 0; list && list[i]; i++)
        if (same_key(list[i], kv))
            return 1;
    return 0;
}

/* Is job->env[i] passed to the child?  Only "K=V" entries, not the four
 * SKED_* names (set last, see shell_own_env), and only the last entry of
 * a name: the last one wins. */
int shell_env_kept(const sked_job *job, size_t i)
{
    const char *kv = job->env[i];
    return strchr(kv, '=') && !is_reserved(kv) && !in_list(job->env + i + 1, kv);
}

/* "SKED_TASK_ID=...", "SKED_RUN_ID=...", "SKED_SCHEDULED_AT=...",
 * "SKED_ATTEMPT=..." of the job, in that order. */
void shell_own_env(const sked_job *job, char own[4][96])
{
    char when[SKED_RFC3339_MAX] = "";
    sked_rfc3339_format(job->scheduled_at, 0, 1, when);
    snprintf(own[0], 96, "SKED_TASK_ID=%s", job->task_id);
    snprintf(own[1], 96, "SKED_RUN_ID=%s", job->run_id);
    snprintf(own[2], 96, "SKED_SCHEDULED_AT=%s", when);
    snprintf(own[3], 96, "SKED_ATTEMPT=%d", job->attempt);
}

/* The child's environment: the worker's, overridden by the job's env,
 * overridden by the four SKED_* variables.  The run identity is set last
 * on purpose: SKED_RUN_ID is what targets deduplicate on (DESIGN §2.3),
 * so a task must not be able to change it.  The array points into
 * environ, job->env and own[]; only the array itself is malloc'ed. */
static char **build_env(const sked_job *job, char own[4][96])
{
    size_t n0 = 0, n1 = 0;
    while (environ && environ[n0])
        n0++;
    while (job->env && job->env[n1])
        n1++;
    char **envp = exec_xzalloc((n0 + n1 + 5) * sizeof *envp);
    size_t n = 0;
    for (size_t i = 0; i < n0; i++)
        if (strchr(environ[i], '=') && !is_reserved(environ[i]) &&
            !in_list(job->env, environ[i]))
            envp[n++] = environ[i];
    for (size_t i = 0; i < n1; i++)
        if (shell_env_kept(job, i))
            envp[n++] = job->env[i];
    shell_own_env(job, own);
    for (int i = 0; i < 4; i++)
        envp[n++] = own[i];
    envp[n] = NULL;
    return envp;
}

/* Why cwd cannot be a child's working directory: an errno, or 0 when it
 * looks fine (a directory we may search). */
int shell_cwd_error(const char *cwd)
{
    struct stat st;
    if (stat(cwd, &st) < 0)
        return errno;
    if (!S_ISDIR(st.st_mode))
        return ENOTDIR;
    if (access(cwd, X_OK) < 0)
        return errno;
    return 0;
}

/* If the job's directory is unusable, say so in res.error: returns 1
 * then, else 0. */
int shell_fail_cwd(run *r)
{
    int e = shell_cwd_error(r->job->cwd);
    if (e)
        snprintf(r->res.error, sizeof r->res.error,
                 "cannot change to directory %.180s: %s", r->job->cwd,
                 strerror(e));
    return e != 0;
}

/* A clear reason for a failed spawn.  posix_spawn reports a failed chdir
 * and a missing /bin/sh with the same errno, so look at the directory. */
static void spawn_error(run *r, int rc)
{
    if (r->job->cwd && shell_fail_cwd(r))
        return;
    snprintf(r->res.error, sizeof r->res.error, "cannot start /bin/sh: %s",
             strerror(rc));
}

/* posix_spawn /bin/sh the way every shell run starts: a process group of
 * its own, an empty signal mask, every disposition at its default, stdin
 * from /dev/null, stdout and stderr to out_fd, in cwd (NULL: ours), and
 * job_fd (-1: none) as fd 3; no other fd.  Returns 0 or an errno. */
int shell_spawn(pid_t *pid, char *const argv[], char *const envp[],
                const char *cwd, int out_fd, int job_fd)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, all;

    posix_spawn_file_actions_init(&fa);
    if (cwd)
        posix_spawn_file_actions_addchdir_np(&fa, cwd);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    posix_spawn_file_actions_adddup2(&fa, out_fd, 2);
    if (job_fd >= 0)
        posix_spawn_file_actions_adddup2(&fa, job_fd, 3);
    /* Nothing else: fds that others opened without O_CLOEXEC (libcurl's
     * wakeup socketpair, whatever our parent left us) stay with us. */
    posix_spawn_file_actions_addclosefrom_np(&fa, job_fd >= 0 ? 4 : 3);

    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP |
                                        POSIX_SPAWN_SETSIGMASK |
                                        POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setpgroup(&attr, 0);
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    sigfillset(&all); /* every disposition back to default */
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    posix_spawnattr_setsigdefault(&attr, &all);

    int rc = posix_spawn(pid, "/bin/sh", &fa, &attr, argv, envp);

    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    return rc;
}

static int spawn(run *r, int out_fd, pid_t *pid)
{
    const sked_job *job = r->job;
    char own[4][96];
    char *argv[] = {"sh", "-c", job->command, NULL};
    char **envp = build_env(job, own);
    int rc = shell_spawn(pid, argv, envp, job->cwd, out_fd, -1);
    free(envp);
    return rc;
}

static void fail_start(run *r, const char *what, int e)
{
    snprintf(r->res.error, sizeof r->res.error, "%s: %s", what, strerror(e));
    exec_watch_close(r->ex, &r->pipe_w);
    exec_finish(r, SKED_JOB_FAILED);
}

void shell_start(run *r)
{
    if (!pool_start(r)) /* else a pool shell took it, or its cwd is bad */
        shell_spawn_run(r);
}

/* Start r in a shell spawned for it now. */
void shell_spawn_run(run *r)
{
    sked_exec *ex = r->ex;
    int p[2];
    /* Only our end is non-blocking: a child writing to a full pipe must
     * block, not see EAGAIN. */
    if (pipe2(p, O_CLOEXEC) < 0) {
        fail_start(r, "cannot create output pipe", errno);
        return;
    }
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    r->pipe_w.fd = p[0];
    int rc = exec_watch_add(ex, &r->pipe_w, EPOLLIN);
    if (rc < 0) {
        close(p[1]);
        fail_start(r, "cannot watch output pipe", -rc);
        return;
    }
    pid_t pid;
    rc = spawn(r, p[1], &pid);
    close(p[1]);
    if (rc != 0) {
        spawn_error(r, rc);
        exec_watch_close(ex, &r->pipe_w);
        exec_finish(r, SKED_JOB_FAILED);
        return;
    }
    shell_running(r, pid, sked_clock_wall_now());
}

/* The child pid runs r since `at` (spawned, or a pool shell given its
 * job; r->pipe_w holds the output pipe): from here on both are alike. */
void shell_running(run *r, pid_t pid, sked_walltime at)
{
    sked_exec *ex = r->ex;
    r->res.started_at = at;
    r->pid = pid;
    r->state = SH_RUNNING;

    int fd = ex->no_pidfd ? -1 : (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd >= 0) {
        r->pidfd_w.fd = fd;
        if (exec_watch_add(ex, &r->pidfd_w, EPOLLIN) < 0) {
            close(fd);
            r->pidfd_w.fd = -1;
        }
    }
    if (r->pidfd_w.fd < 0)
        ex->npolled++;
    if (r->job->timeout_us > 0)
        exec_heap_set(ex, r, exec_after(r->started_mono, r->job->timeout_us));
    if (ex->started)
        ex->started(ex->ctx, r->job, r->res.started_at);
}

/* The run is over: leader reaped and the pipe closed. */
static void shell_end(run *r)
{
    char t[32];
    sked_job_outcome o;
    if (r->canceled) {
        o = SKED_JOB_CANCELED;
    } else if (r->timed_out) {
        o = SKED_JOB_TIMED_OUT;
        exec_ms_text(r->job->timeout_us, t, sizeof t);
        snprintf(r->res.error, sizeof r->res.error, "timed out after %s", t);
    } else if (r->res.error[0]) {
        o = SKED_JOB_FAILED; /* exit status lost */
    } else if (r->res.term_signal) {
        o = SKED_JOB_FAILED;
        snprintf(r->res.error, sizeof r->res.error, "killed by signal %d",
                 r->res.term_signal);
    } else if (r->res.exit_code != 0) {
        o = SKED_JOB_FAILED;
        snprintf(r->res.error, sizeof r->res.error, "exit status %d",
                 r->res.exit_code);
    } else {
        o = SKED_JOB_SUCCEEDED;
    }
    exec_finish(r, o);
}

void shell_on_pipe(run *r)
{
    char buf[64 * 1024];
    for (int i = 0; i < READ_ROUNDS; i++) {
        ssize_t n = read(r->pipe_w.fd, buf, sizeof buf);
        if (n > 0) {
            tail_append(&r->out, buf, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        /* EOF (or a read error, which we treat alike) */
        exec_watch_close(r->ex, &r->pipe_w);
        if (r->exited)
            shell_end(r);
        return;
    }
    /* still more: level-triggered epoll brings us back after the others */
}

void shell_on_exit(run *r)
{
    sked_exec *ex = r->ex;
    int st;
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int rc = waitid(P_PID, (id_t)r->pid, &si, WEXITED | WNOHANG | WNOWAIT);
    if (rc == 0 && si.si_pid == 0)
        return; /* not exited after all */
    if (rc == 0) /* still our zombie, so the group id is still ours */
        kill(-r->pid, SIGKILL); /* leftovers of the run (see above) */
    pid_t w;
    while ((w = waitpid(r->pid, &st, WNOHANG)) < 0 && errno == EINTR)
        ;
    if (w == 0)
        return; /* not exited after all */
    if (w < 0) {
        /* Someone else reaped it (waitpid(-1) elsewhere, SIGCHLD ignored). */
        snprintf(r->res.error, sizeof r->res.error, "exit status lost: %s",
                 strerror(errno));
    } else if (WIFEXITED(st)) {
        r->res.exit_code = WEXITSTATUS(st);
    } else if (WIFSIGNALED(st)) {
        r->res.term_signal = WTERMSIG(st);
    }
    if (r->pidfd_w.fd >= 0)
        exec_watch_close(ex, &r->pidfd_w);
    else
        ex->npolled--;
    r->exited = 1;
    r->pid = 0;
    if (r->pipe_w.fd < 0) {
        shell_end(r);
        return;
    }
    r->state = SH_DRAINING;
    exec_heap_set(ex, r, exec_after(sked_clock_mono_now(), DRAIN_US));
}

/* SIGTERM to the group now, SIGKILL when the grace runs out. */
static void terminate(run *r)
{
    kill(-r->pid, SIGTERM);
    r->state = SH_TERMINATING;
    exec_heap_set(r->ex, r,
                  exec_after(sked_clock_mono_now(), r->ex->kill_grace_us));
}

void shell_on_deadline(run *r)
{
    switch (r->state) {
    case SH_RUNNING:
        r->timed_out = 1;
        terminate(r);
        break;
    case SH_TERMINATING:
        kill(-r->pid, SIGKILL);
        r->state = SH_KILLED;
        break;
    case SH_KILLED:
        break;
    case SH_DRAINING: /* someone outside the group holds the pipe */
        exec_watch_close(r->ex, &r->pipe_w);
        shell_end(r);
        break;
    }
}

void shell_cancel(run *r)
{
    switch (r->state) {
    case SH_RUNNING:
        terminate(r);
        break;
    case SH_TERMINATING:
    case SH_KILLED:
        break; /* already on its way out */
    case SH_DRAINING:
        exec_watch_close(r->ex, &r->pipe_w);
        shell_end(r);
        break;
    }
}

/* Children without a pidfd: ask each whether it has exited.  WNOWAIT
 * leaves it a zombie so that shell_on_exit can still signal its group. */
void shell_poll_exits(sked_exec *ex)
{
    for (run *r = ex->live, *next; r; r = next) {
        next = r->lnext; /* shell_on_exit may end r */
        if (r->job->kind != SKED_JOB_SHELL || r->exited || r->pid <= 0 ||
            r->pidfd_w.fd >= 0)
            continue;
        siginfo_t si;
        memset(&si, 0, sizeof si);
        int rc = waitid(P_PID, (id_t)r->pid, &si, WEXITED | WNOHANG | WNOWAIT);
        if ((rc == 0 && si.si_pid == r->pid) || (rc < 0 && errno == ECHILD))
            shell_on_exit(r);
    }
}
