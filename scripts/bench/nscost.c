// Measures what each namespace adds to clone + exit + wait of a child that does nothing
// (BENCHMARKS.md, container start-to-exit). Build and run: gcc -O2 -o /tmp/nscost
// scripts/bench/nscost.c && sudo /tmp/nscost
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>
#include <signal.h>
static char stack[65536];
static int child(void *a) { return 0; }
static double now() { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec*1e6 + t.tv_nsec/1e3; }
int cmp(const void *a, const void *b) { double x=*(double*)a, y=*(double*)b; return x<y?-1:x>y; }
int main() {
  struct { const char *n; int f; } cases[] = {{"none",0},{"pid",CLONE_NEWPID},{"ns",CLONE_NEWNS},{"ipc",CLONE_NEWIPC},{"uts",CLONE_NEWUTS},{"cgroup",CLONE_NEWCGROUP},{"all but net",CLONE_NEWPID|CLONE_NEWNS|CLONE_NEWIPC|CLONE_NEWUTS|CLONE_NEWCGROUP}};
  for (int r=0;r<2;r++) for (int c=0;c<7;c++) {
    double ts[400];
    for (int i=0;i<400;i++) {
      double t=now();
      int pid = clone(child, stack+sizeof stack, cases[c].f|SIGCHLD, 0);
      waitpid(pid,0,0);
      ts[i]=now()-t;
    }
    qsort(ts,400,sizeof(double),cmp);
    printf("%-12s median %6.0f us\n", cases[c].n, ts[200]);
  }
}
