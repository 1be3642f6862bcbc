/*
 * A fake libamd_smi.so for wattprint's tests, compiled by the tests (cc -shared -fPIC), with
 * amdsmi's ABI for the calls wattprint makes. One socket, three processors:
 *
 *   0  AMD Instinct MI300X   energy accumulator advancing at 500 W (resolution 15.259 µJ)
 *   1  AMD Instinct MI300X   energy accumulator advancing at 250 W
 *   2  (no name)             amdsmi_get_energy_count not supported
 *
 * FAKE_AMDSMI_INIT_FAIL=1 makes amdsmi_init fail.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define OK 0
#define NOT_SUPPORTED 2
#define INVAL 1

static struct timespec t0;
static int initialised = 0;
static int procs[3] = {0, 1, 2};
static int socket0 = 0;

static double elapsed_s(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0.tv_sec) + (double)(now.tv_nsec - t0.tv_nsec) * 1e-9;
}

int amdsmi_init(uint64_t flags) {
    (void)flags;
    const char *f = getenv("FAKE_AMDSMI_INIT_FAIL");
    if (f && strcmp(f, "1") == 0) return 8; /* AMDSMI_STATUS_INIT_ERROR-like */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    initialised = 1;
    return OK;
}

int amdsmi_shut_down(void) { initialised = 0; return OK; }

int amdsmi_get_socket_handles(uint32_t *count, void **handles) {
    if (!initialised) return INVAL;
    if (!handles) { *count = 1; return OK; }
    if (*count < 1) return INVAL;
    handles[0] = &socket0;
    *count = 1;
    return OK;
}

int amdsmi_get_processor_handles(void *socket, uint32_t *count, void **handles) {
    if (socket != &socket0) return INVAL;
    if (!handles) { *count = 3; return OK; }
    uint32_t n = *count < 3 ? *count : 3;
    for (uint32_t i = 0; i < n; i++) handles[i] = &procs[i];
    *count = n;
    return OK;
}

static int idx(void *h) {
    if (h < (void *)&procs[0] || h > (void *)&procs[2]) return -1;
    return *(int *)h;
}

int amdsmi_get_energy_count(void *h, uint64_t *acc, float *res, uint64_t *ts) {
    int i = idx(h);
    if (i < 0) return INVAL;
    if (i == 2) return NOT_SUPPORTED;
    double watts = i == 0 ? 500.0 : 250.0;
    float r = 15.259f;
    double t = elapsed_s();
    *acc = (uint64_t)(1000000.0 + watts * t * 1e6 / (double)r);
    *res = r;
    *ts = (uint64_t)(t * 1e9);
    return OK;
}

/* amdsmi_asic_info_t begins with char market_name[256]. */
int amdsmi_get_gpu_asic_info(void *h, char *info) {
    int i = idx(h);
    if (i < 0) return INVAL;
    if (i == 2) return NOT_SUPPORTED;
    memset(info, 0, 256);
    strcpy(info, "AMD Instinct MI300X");
    return OK;
}

int amdsmi_get_gpu_device_uuid(void *h, unsigned *len, char *uuid) {
    int i = idx(h);
    if (i < 0 || *len < 40) return INVAL;
    strcpy(uuid, i == 0 ? "aa000000-0000-0000-0000-000000000000" : "bb000000-0000-0000-0000-000000000000");
    return OK;
}
