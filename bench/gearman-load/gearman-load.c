/*
 * gearman-load: a small load generator for gearmand over libgearman, the peer that bench/compare
 * measures Dts against. Each run does one phase and prints one parseable line:
 *
 *   result phase=<phase> jobs=<n> seconds=<s> rate=<jobs per second> errors=<n> [p50_us=.. p90_us=.. p99_us=.. max_us=..]
 *
 * Phases:
 *   submit   C client threads queue N background jobs, B per round trip (add_task_background + run_tasks)
 *   drain    W worker threads take N queued background jobs; timed from the workers' start to the Nth job done
 *   e2e      W workers serve while C clients run N foreground jobs, B at a time (add_task + run_tasks),
 *            timed until every client has received every result
 *   latency  W workers serve; one client runs S foreground jobs one at a time (gearman_client_do)
 *
 * Build: gcc -O2 -pthread -o gearman-load gearman-load.c -lgearman
 */
#define _GNU_SOURCE
#include <libgearman/gearman.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *host = "127.0.0.1";
static in_port_t port = 4730;
static const char *function = "bench_noop";
static long jobs = 10000;
static int clients = 2;
static int workers = 4;
static int batch = 500;
static int payload = 0;
static int samples = 2000;
static char *workload;

static atomic_long jobs_done;
static atomic_long errors;
static atomic_int stop_workers;
static atomic_int workers_ready;
static double finish_time;
static pthread_mutex_t finish_lock = PTHREAD_MUTEX_INITIALIZER;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: gearman-load submit|drain|e2e|latency [--host H] [--port P] [--function F] [--jobs N]\n"
            "       [--clients C] [--workers W] [--batch B] [--payload BYTES] [--samples S]\n");
    exit(2);
}

/* The worker's function: a no-op that returns an empty result. */
static void *noop(gearman_job_st *job, void *context, size_t *result_size, gearman_return_t *ret)
{
    (void)job;
    (void)context;
    *result_size = 0;
    *ret = GEARMAN_SUCCESS;
    long done = atomic_fetch_add(&jobs_done, 1) + 1;
    if (done == jobs) {
        pthread_mutex_lock(&finish_lock);
        finish_time = now();
        pthread_mutex_unlock(&finish_lock);
    }
    return NULL;
}

static void *worker_main(void *arg)
{
    (void)arg;
    gearman_worker_st *w = gearman_worker_create(NULL);
    if (w == NULL || gearman_failed(gearman_worker_add_server(w, host, port))) {
        fprintf(stderr, "gearman-load: worker cannot connect\n");
        exit(1);
    }
    gearman_worker_set_timeout(w, 100);
    if (gearman_failed(gearman_worker_add_function(w, function, 0, noop, NULL))) {
        fprintf(stderr, "gearman-load: add_function: %s\n", gearman_worker_error(w));
        exit(1);
    }
    atomic_fetch_add(&workers_ready, 1);
    while (!atomic_load(&stop_workers)) {
        gearman_return_t rc = gearman_worker_work(w);
        if (rc == GEARMAN_SUCCESS || rc == GEARMAN_TIMEOUT || rc == GEARMAN_NO_JOBS || rc == GEARMAN_IO_WAIT)
            continue;
        if (rc == GEARMAN_NO_ACTIVE_FDS || rc == GEARMAN_LOST_CONNECTION || rc == GEARMAN_COULD_NOT_CONNECT) {
            usleep(10000);
            continue;
        }
        atomic_fetch_add(&errors, 1);
        fprintf(stderr, "gearman-load: worker: %s\n", gearman_strerror(rc));
        usleep(10000);
    }
    gearman_worker_free(w);
    return NULL;
}

static gearman_client_st *new_client(void)
{
    gearman_client_st *c = gearman_client_create(NULL);
    if (c == NULL || gearman_failed(gearman_client_add_server(c, host, port))) {
        fprintf(stderr, "gearman-load: client cannot connect\n");
        exit(1);
    }
    return c;
}

struct client_args {
    long count;
    int background;
};

/* Queues or runs `count` jobs, `batch` tasks per run_tasks round. */
static void *client_main(void *arg)
{
    struct client_args *a = arg;
    gearman_client_st *c = new_client();
    for (long sent = 0; sent < a->count;) {
        long size = a->count - sent < batch ? a->count - sent : batch;
        for (long i = 0; i < size; i++) {
            gearman_return_t rc;
            gearman_task_st *t = a->background
                ? gearman_client_add_task_background(c, NULL, NULL, function, NULL, payload > 0 ? workload : NULL, (size_t)payload, &rc)
                : gearman_client_add_task(c, NULL, NULL, function, NULL, payload > 0 ? workload : NULL, (size_t)payload, &rc);
            if (t == NULL || gearman_failed(rc)) {
                fprintf(stderr, "gearman-load: add_task: %s\n", gearman_client_error(c));
                exit(1);
            }
        }
        gearman_return_t rc = gearman_client_run_tasks(c);
        if (gearman_failed(rc)) {
            atomic_fetch_add(&errors, 1);
            fprintf(stderr, "gearman-load: run_tasks: %s\n", gearman_client_error(c));
        }
        gearman_client_task_free_all(c);
        sent += size;
    }
    gearman_client_free(c);
    return NULL;
}

static pthread_t *start_workers(void)
{
    pthread_t *ts = calloc((size_t)workers, sizeof *ts);
    for (int i = 0; i < workers; i++) pthread_create(&ts[i], NULL, worker_main, NULL);
    while (atomic_load(&workers_ready) < workers) usleep(1000);
    return ts;
}

static void stop(pthread_t *ts)
{
    atomic_store(&stop_workers, 1);
    for (int i = 0; i < workers; i++) pthread_join(ts[i], NULL);
    free(ts);
}

static double run_clients(int background)
{
    pthread_t *ts = calloc((size_t)clients, sizeof *ts);
    struct client_args *args = calloc((size_t)clients, sizeof *args);
    double start = now();
    for (int i = 0; i < clients; i++) {
        args[i].count = jobs / clients + (i < jobs % clients ? 1 : 0);
        args[i].background = background;
        pthread_create(&ts[i], NULL, client_main, &args[i]);
    }
    for (int i = 0; i < clients; i++) pthread_join(ts[i], NULL);
    double seconds = now() - start;
    free(ts);
    free(args);
    return seconds;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double percentile(const double *sorted, int n, double p)
{
    int i = (int)(p / 100.0 * n + 0.999999) - 1;
    if (i < 0) i = 0;
    if (i >= n) i = n - 1;
    return sorted[i];
}

int main(int argc, char **argv)
{
    if (argc < 2) usage();
    const char *phase = argv[1];
    for (int i = 2; i < argc; i++) {
        if (i + 1 >= argc) usage();
        const char *k = argv[i], *v = argv[++i];
        if (!strcmp(k, "--host")) host = v;
        else if (!strcmp(k, "--port")) port = (in_port_t)atoi(v);
        else if (!strcmp(k, "--function")) function = v;
        else if (!strcmp(k, "--jobs")) jobs = atol(v);
        else if (!strcmp(k, "--clients")) clients = atoi(v);
        else if (!strcmp(k, "--workers")) workers = atoi(v);
        else if (!strcmp(k, "--batch")) batch = atoi(v);
        else if (!strcmp(k, "--payload")) payload = atoi(v);
        else if (!strcmp(k, "--samples")) samples = atoi(v);
        else usage();
    }
    if (jobs < 1 || clients < 1 || workers < 1 || batch < 1 || payload < 0 || samples < 1) usage();
    workload = malloc((size_t)payload + 1);
    memset(workload, 'x', (size_t)payload);

    if (!strcmp(phase, "submit")) {
        double s = run_clients(1);
        printf("result phase=submit jobs=%ld seconds=%.6f rate=%.1f errors=%ld\n", jobs, s, jobs / s, atomic_load(&errors));
    } else if (!strcmp(phase, "drain")) {
        double start = now();
        pthread_t *ts = start_workers();
        while (atomic_load(&jobs_done) < jobs) usleep(200);
        stop(ts);
        double s = finish_time - start;
        printf("result phase=drain jobs=%ld seconds=%.6f rate=%.1f errors=%ld workers=%d\n", jobs, s, jobs / s, atomic_load(&errors), workers);
    } else if (!strcmp(phase, "e2e")) {
        pthread_t *ts = start_workers();
        double s = run_clients(0);
        stop(ts);
        printf("result phase=e2e jobs=%ld seconds=%.6f rate=%.1f errors=%ld\n", jobs, s, jobs / s, atomic_load(&errors));
    } else if (!strcmp(phase, "latency")) {
        pthread_t *ts = start_workers();
        gearman_client_st *c = new_client();
        int warm = samples < 200 ? samples : 200;
        double *us = calloc((size_t)samples, sizeof *us);
        double start = now();
        for (int i = 0; i < samples + warm; i++) {
            size_t size;
            gearman_return_t rc;
            double t0 = now();
            void *result = gearman_client_do(c, function, NULL, payload > 0 ? workload : NULL, (size_t)payload, &size, &rc);
            double t = now() - t0;
            free(result);
            if (gearman_failed(rc)) {
                atomic_fetch_add(&errors, 1);
                fprintf(stderr, "gearman-load: do: %s\n", gearman_client_error(c));
            }
            if (i >= warm) us[i - warm] = t * 1e6;
        }
        double s = now() - start;
        gearman_client_free(c);
        stop(ts);
        qsort(us, (size_t)samples, sizeof *us, compare_doubles);
        printf("result phase=latency jobs=%d seconds=%.6f rate=%.1f errors=%ld p50_us=%.1f p90_us=%.1f p99_us=%.1f max_us=%.1f\n",
               samples + warm, s, (samples + warm) / s, atomic_load(&errors),
               percentile(us, samples, 50), percentile(us, samples, 90), percentile(us, samples, 99), us[samples - 1]);
        free(us);
    } else {
        usage();
    }
    free(workload);
    return atomic_load(&errors) > 0 ? 1 : 0;
}
