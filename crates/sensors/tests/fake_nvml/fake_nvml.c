/*
 * A fake libnvidia-ml.so.1 for wattprint's tests, compiled by the tests themselves
 * (cc -shared -fPIC). It implements the few NVML entry points wattprint calls, with the real
 * ABI, and scripts five GPUs whose energy advances with the monotonic clock from nvmlInit:
 *
 *   0  NVIDIA H100 80GB HBM3   energy counter, 300 W (counter starts at 5,000,000 mJ)
 *   1  NVIDIA A100 80GB PCIe   no energy counter; instantaneous field 186 = 150 W,
 *                              the 1 s average (nvmlDeviceGetPowerUsage) says 999 W
 *   2  Tesla T4                no energy counter, no field 186; power usage 70 W
 *   3  NVIDIA L4               energy counter, 72 W; "GPU is lost" for every call once
 *                              its counter has been read FAKE_NVML_LOST_AFTER_READS times
 *                              (default 3: discovery, the meter's baseline, a window begin)
 *   4  NVIDIA A100-SXM4-40GB   MIG mode enabled; energy counter, 200 W; no process samples;
 *                              two MIG instances, MIG-44444444-aaaa-... and MIG-44444444-bbbb-...
 *
 * PCI bus ids are 00000000:1N:00.0 for GPU N (NVML's index order is PCI bus order).
 *
 * FAKE_NVML_INIT_FAIL=1 makes nvmlInit_v2 fail with NVML_ERROR_DRIVER_NOT_LOADED.
 * FAKE_NVML_PROCS="pid:sm,pid:sm" sets the process utilisation samples of GPU 0;
 * FAKE_NVML_PROCS_FILE names a file holding that spec, read at each call (so a workload can
 * write its own PID there).
 *
 * Power limits: each GPU's limit starts at its enforced limit above, which is also its
 * maximum; the minimum is a quarter of it. nvmlDeviceSetPowerManagementLimit refuses a limit
 * outside that range (INVALID_ARGUMENT) and, with FAKE_NVML_SET_DENIED=1, every limit
 * (NO_PERMISSION). FAKE_NVML_CALLS_FILE names a file each accepted set appends
 * "set INDEX MW" to, so a test sees the calls of another process.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef int nvmlReturn_t;
#define NVML_SUCCESS 0
#define NVML_ERROR_UNINITIALIZED 1
#define NVML_ERROR_INVALID_ARGUMENT 2
#define NVML_ERROR_NOT_SUPPORTED 3
#define NVML_ERROR_NO_PERMISSION 4
#define NVML_ERROR_INSUFFICIENT_SIZE 7
#define NVML_ERROR_DRIVER_NOT_LOADED 9
#define NVML_ERROR_GPU_IS_LOST 15

typedef struct {
    int index;
    const char *name;
    const char *uuid;
    int has_counter;
    int has_instant;
    double watts;       /* what the counter or the instantaneous field advances with */
    double avg_watts;   /* what nvmlDeviceGetPowerUsage says */
    unsigned limit_mw;
    int lost;           /* fails after FAKE_NVML_LOST_AFTER_READS counter reads */
    int reads;
    int mig;
} fake_gpu;

static fake_gpu GPUS[] = {
    {0, "NVIDIA H100 80GB HBM3", "GPU-00000000-0000-0000-0000-000000000000", 1, 1, 300.0, 300.0, 700000, 0, 0, 0},
    {1, "NVIDIA A100 80GB PCIe", "GPU-11111111-1111-1111-1111-111111111111", 0, 1, 150.0, 999.0, 300000, 0, 0, 0},
    {2, "Tesla T4", "GPU-22222222-2222-2222-2222-222222222222", 0, 0, 70.0, 70.0, 70000, 0, 0, 0},
    {3, "NVIDIA L4", "GPU-33333333-3333-3333-3333-333333333333", 1, 1, 72.0, 72.0, 72000, 1, 0, 0},
    {4, "NVIDIA A100-SXM4-40GB", "GPU-44444444-4444-4444-4444-444444444444", 1, 1, 200.0, 200.0, 400000, 0, 0, 1},
};
#define NGPUS (sizeof(GPUS) / sizeof(GPUS[0]))

static int initialised = 0;
static unsigned MAX_MW[NGPUS];
static struct timespec t0;

static double elapsed_s(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0.tv_sec) + (double)(now.tv_nsec - t0.tv_nsec) * 1e-9;
}

static fake_gpu *dev(void *h) {
    fake_gpu *g = (fake_gpu *)h;
    if (g < GPUS || g >= GPUS + NGPUS) return NULL;
    return g;
}

static int is_lost(fake_gpu *g) {
    if (!g->lost) return 0;
    const char *n = getenv("FAKE_NVML_LOST_AFTER_READS");
    int after = n ? atoi(n) : 3;
    return g->reads >= after;
}

static nvmlReturn_t check(void *h, fake_gpu **out) {
    if (!initialised) return NVML_ERROR_UNINITIALIZED;
    fake_gpu *g = dev(h);
    if (!g) return NVML_ERROR_INVALID_ARGUMENT;
    if (is_lost(g)) return NVML_ERROR_GPU_IS_LOST;
    *out = g;
    return NVML_SUCCESS;
}

static nvmlReturn_t copy_str(char *buf, unsigned len, const char *s) {
    if (!buf) return NVML_ERROR_INVALID_ARGUMENT;
    if (strlen(s) + 1 > len) return NVML_ERROR_INSUFFICIENT_SIZE;
    strcpy(buf, s);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlInit_v2(void) {
    const char *fail = getenv("FAKE_NVML_INIT_FAIL");
    if (fail && strcmp(fail, "1") == 0) return NVML_ERROR_DRIVER_NOT_LOADED;
    if (!initialised) {
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (unsigned i = 0; i < NGPUS; i++)
            if (!MAX_MW[i]) MAX_MW[i] = GPUS[i].limit_mw;
    }
    initialised = 1;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlInitWithFlags(unsigned flags) {
    (void)flags;
    return nvmlInit_v2();
}

nvmlReturn_t nvmlShutdown(void) {
    initialised = 0;
    return NVML_SUCCESS;
}

const char *nvmlErrorString(nvmlReturn_t r) {
    switch (r) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    default: return "Unknown Error";
    }
}

nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned length) {
    return copy_str(version, length, "550.54.15");
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned *count) {
    if (!initialised) return NVML_ERROR_UNINITIALIZED;
    *count = NGPUS;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned index, void **device) {
    if (!initialised) return NVML_ERROR_UNINITIALIZED;
    if (index >= NGPUS || !device) return NVML_ERROR_INVALID_ARGUMENT;
    *device = &GPUS[index];
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetName(void *device, char *name, unsigned length) {
    fake_gpu *g;
    nvmlReturn_t r = check(device, &g);
    return r ? r : copy_str(name, length, g->name);
}

/* MIG instances of GPU 4: handles distinct from the GPUs', answering only for their UUID. */
static const char *MIGS[] = {
    "MIG-44444444-aaaa-5555-8888-000000000001",
    "MIG-44444444-bbbb-5555-8888-000000000002",
};
#define NMIGS (sizeof(MIGS) / sizeof(MIGS[0]))

nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(void *device, unsigned *count) {
    fake_gpu *g;
    nvmlReturn_t r = check(device, &g);
    if (r) return r;
    if (!g->mig) return NVML_ERROR_NOT_SUPPORTED;
    *count = NMIGS + 1; /* one empty slot, as real GPUs have */
    return NVML_SUCCESS;
}

#define NVML_ERROR_NOT_FOUND 6

nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(void *device, unsigned index, void **mig) {
    fake_gpu *g;
    nvmlReturn_t r = check(device, &g);
    if (r) return r;
    if (!g->mig) return NVML_ERROR_NOT_SUPPORTED;
    if (index >= NMIGS) return NVML_ERROR_NOT_FOUND;
    *mig = (void *)&MIGS[index];
    return NVML_SUCCESS;
}

typedef struct {
    char busIdLegacy[16];
    unsigned domain;
    unsigned bus;
    unsigned device;
    unsigned pciDeviceId;
    unsigned pciSubSystemId;
    char busId[32];
} nvmlPciInfo_t;

nvmlReturn_t nvmlDeviceGetPciInfo_v3(void *device, nvmlPciInfo_t *pci) {
    fake_gpu *g;
    nvmlReturn_t r = check(device, &g);
    if (r) return r;
    memset(pci, 0, sizeof(*pci));
    pci->bus = 0x10 + (unsigned)g->index;
    snprintf(pci->busIdLegacy, sizeof(pci->busIdLegacy), "0000:%02X:00.0", pci->bus);
    snprintf(pci->busId, sizeof(pci->busId), "00000000:%02X:00.0", pci->bus);
    pci->pciDeviceId = 0x233010de;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetUUID(void *device, char *uuid, unsigned length) {
    const char **m = (const char **)device;
    if (initialised && m >= MIGS && m < MIGS + NMIGS) return copy_str(uuid, length, *m);
    fake_gpu *g;
    nvmlReturn_t r = check(device, &g);
    return r ? r : copy_str(uuid, length, g->uuid);
}

nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(void *device, unsigned long long *energy_mj) {
    fake_gpu *g;
    nvmlReturn_t r = check(device, &g);
    if (r) return r;
    if (!g->has_counter) return NVML_ERROR_NOT_SUPPORTED;
    g->reads++;
    *energy_mj = (unsigned long long)(5000000.0 + g->watts * elapsed_s() * 1000.0);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetPowerUsage(void *device, unsigned *power_mw) {
    fake_gpu *g;
    nvmlReturn_t r = check(device, &g);
    if (r) return r;
    *power_mw = (unsigned)(g->avg_watts * 1000.0);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(void *device, unsigned *limit_mw) {
    fake_gpu *g;
    nvmlReturn_t r = check(device, &g);
    if (r) return r;
    *limit_mw = g->limit_mw;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetPowerManagementLimit(void *device, unsigned *limit_mw) {
    return nvmlDeviceGetEnforcedPowerLimit(device, limit_mw);
}

nvmlReturn_t nvmlDeviceGetPowerManagementLimitConstraints(void *device, unsigned *min_mw,
                                                          unsigned *max_mw) {
    fake_gpu *g;
    nvmlReturn_t r = check(device, &g);
    if (r) return r;
    *max_mw = MAX_MW[g->index];
    *min_mw = MAX_MW[g->index] / 4;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceSetPowerManagementLimit(void *device, unsigned limit_mw) {
    fake_gpu *g;
    nvmlReturn_t r = check(device, &g);
    if (r) return r;
    const char *denied = getenv("FAKE_NVML_SET_DENIED");
    if (denied && strcmp(denied, "1") == 0) return NVML_ERROR_NO_PERMISSION;
    if (limit_mw > MAX_MW[g->index] || limit_mw < MAX_MW[g->index] / 4)
        return NVML_ERROR_INVALID_ARGUMENT;
    g->limit_mw = limit_mw;
    const char *path = getenv("FAKE_NVML_CALLS_FILE");
    if (path) {
        FILE *f = fopen(path, "a");
        if (f) {
            fprintf(f, "set %d %u\n", g->index, limit_mw);
            fclose(f);
        }
    }
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMigMode(void *device, unsigned *current, unsigned *pending) {
    fake_gpu *g;
    nvmlReturn_t r = check(device, &g);
    if (r) return r;
    if (g->index == 2) return NVML_ERROR_NOT_SUPPORTED; /* pre-Ampere: no MIG */
    *current = (unsigned)g->mig;
    *pending = (unsigned)g->mig;
    return NVML_SUCCESS;
}

/* nvmlFieldValue_t, as in nvml.h */
typedef struct {
    unsigned fieldId;
    unsigned scopeId;
    long long timestamp;
    long long latencyUsec;
    int valueType;
    nvmlReturn_t nvmlReturn;
    union {
        double dVal;
        int siVal;
        unsigned uiVal;
        unsigned long ulVal;
        unsigned long long ullVal;
        long long sllVal;
        unsigned short usVal;
    } value;
} nvmlFieldValue_t;

nvmlReturn_t nvmlDeviceGetFieldValues(void *device, int count, nvmlFieldValue_t *values) {
    fake_gpu *g;
    nvmlReturn_t r = check(device, &g);
    if (r) return r;
    for (int i = 0; i < count; i++) {
        values[i].timestamp = 0;
        values[i].latencyUsec = 0;
        if (values[i].fieldId == 186 && g->has_instant) {
            values[i].valueType = 1; /* NVML_VALUE_TYPE_UNSIGNED_INT */
            values[i].value.uiVal = (unsigned)(g->watts * 1000.0);
            values[i].nvmlReturn = NVML_SUCCESS;
        } else {
            values[i].nvmlReturn = NVML_ERROR_NOT_SUPPORTED;
        }
    }
    return NVML_SUCCESS;
}

typedef struct {
    unsigned pid;
    unsigned long long timeStamp;
    unsigned smUtil;
    unsigned memUtil;
    unsigned encUtil;
    unsigned decUtil;
} nvmlProcessUtilizationSample_t;

nvmlReturn_t nvmlDeviceGetProcessUtilization(void *device, nvmlProcessUtilizationSample_t *samples,
                                             unsigned *count, unsigned long long last_seen) {
    fake_gpu *g;
    nvmlReturn_t r = check(device, &g);
    if (r) return r;
    if (g->mig) return NVML_ERROR_NOT_SUPPORTED;
    const char *spec = g->index == 0 ? getenv("FAKE_NVML_PROCS") : NULL;
    char filebuf[512];
    const char *path = g->index == 0 ? getenv("FAKE_NVML_PROCS_FILE") : NULL;
    if (path) {
        FILE *f = fopen(path, "r");
        spec = NULL;
        if (f) {
            size_t n = fread(filebuf, 1, sizeof(filebuf) - 1, f);
            fclose(f);
            filebuf[n] = 0;
            spec = filebuf;
        }
    }
    unsigned pids[16], sms[16], n = 0;
    if (spec) {
        const char *p = spec;
        while (*p && n < 16) {
            unsigned pid, sm;
            if (sscanf(p, "%u:%u", &pid, &sm) != 2) break;
            pids[n] = pid;
            sms[n] = sm;
            n++;
            p = strchr(p, ',');
            if (!p) break;
            p++;
        }
    }
    /* One new sample per process per call, stamped with the time in microseconds. */
    unsigned long long ts = (unsigned long long)(elapsed_s() * 1e6) + 1;
    if (ts <= last_seen) n = 0;
    if (!samples) {
        *count = n;
        return n ? NVML_ERROR_INSUFFICIENT_SIZE : NVML_SUCCESS;
    }
    if (*count < n) {
        *count = n;
        return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    for (unsigned i = 0; i < n; i++) {
        samples[i].pid = pids[i];
        samples[i].timeStamp = ts;
        samples[i].smUtil = sms[i];
        samples[i].memUtil = 0;
        samples[i].encUtil = 0;
        samples[i].decUtil = 0;
    }
    *count = n;
    return NVML_SUCCESS;
}
