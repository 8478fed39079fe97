// Vector add on every visible GPU; prints PASSED when all results are right.
#include <cstdio>
#include <hip/hip_runtime.h>

__global__ void add(const float *a, const float *b, float *c, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) c[i] = a[i] + b[i];
}

int main() {
  const int n = 1 << 20;
  int devices = 0;
  if (hipGetDeviceCount(&devices) != hipSuccess || devices == 0) { printf("no HIP device\n"); return 1; }
  for (int d = 0; d < devices; ++d) {
    hipSetDevice(d);
    float *a, *b, *c;
    hipMallocManaged(&a, n * sizeof(float));
    hipMallocManaged(&b, n * sizeof(float));
    hipMallocManaged(&c, n * sizeof(float));
    for (int i = 0; i < n; ++i) { a[i] = i; b[i] = 2.0f * i; }
    add<<<(n + 255) / 256, 256>>>(a, b, c, n);
    if (hipDeviceSynchronize() != hipSuccess) { printf("GPU %d: %s\n", d, hipGetErrorString(hipGetLastError())); return 1; }
    for (int i = 0; i < n; ++i) if (c[i] != 3.0f * i) { printf("GPU %d: wrong result at %d\n", d, i); return 1; }
    hipFree(a); hipFree(b); hipFree(c);
  }
  printf("%d device(s) PASSED\n", devices);
  return 0;
}
