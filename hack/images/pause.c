/*
 * pause: the process that holds a pod sandbox's namespaces open.
 *
 * It does nothing until SIGINT or SIGTERM asks it to exit (status 0). When the
 * pod shares one PID namespace it is PID 1 there, so it also reaps every child
 * that gets re-parented to it, leaving no zombies behind.
 *
 * Written for dra-driver-sriov's test images (hack/images/build.sh), linked
 * statically so the image needs nothing but this file.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t stop_signal;

static void on_stop(int sig) { stop_signal = sig; }

/* The handler only makes sigsuspend return; reaping happens in main. */
static void on_child(int sig) { (void)sig; }

static void reap_children(void) {
  int saved = errno;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
  errno = saved;
}

static int install(int sig, void (*handler)(int)) {
  struct sigaction action;
  memset(&action, 0, sizeof(action));
  action.sa_handler = handler;
  action.sa_flags = SA_RESTART | (sig == SIGCHLD ? SA_NOCLDSTOP : 0);
  sigfillset(&action.sa_mask);
  if (sigaction(sig, &action, NULL) != 0) {
    fprintf(stderr, "pause: sigaction(%d): %s\n", sig, strerror(errno));
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 1 && (strcmp(argv[1], "-v") == 0 || strcmp(argv[1], "--version") == 0)) {
    puts("pause (dra-driver-sriov test image)");
    return 0;
  }

  /*
   * Block the signals we wait for, then wait with sigsuspend, which unblocks
   * them atomically: a signal arriving between the check of stop_signal and
   * the wait is delivered inside sigsuspend instead of being missed.
   */
  sigset_t waited, during_wait;
  sigemptyset(&waited);
  sigaddset(&waited, SIGINT);
  sigaddset(&waited, SIGTERM);
  sigaddset(&waited, SIGCHLD);
  if (sigprocmask(SIG_BLOCK, &waited, &during_wait) != 0) {
    fprintf(stderr, "pause: sigprocmask: %s\n", strerror(errno));
    return 1;
  }
  sigdelset(&during_wait, SIGINT);
  sigdelset(&during_wait, SIGTERM);
  sigdelset(&during_wait, SIGCHLD);
  if (install(SIGINT, on_stop) != 0 || install(SIGTERM, on_stop) != 0 ||
      install(SIGCHLD, on_child) != 0) {
    return 1;
  }

  if (getpid() != 1) {
    fprintf(stderr, "pause: not PID 1; orphans of this pod are not reaped here\n");
  }

  while (stop_signal == 0) {
    sigsuspend(&during_wait);
    reap_children();
  }
  reap_children();
  fprintf(stderr, "pause: exiting on signal %d\n", (int)stop_signal);
  return 0;
}
